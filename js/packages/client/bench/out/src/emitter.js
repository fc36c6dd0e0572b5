// A minimal typed listener set: subscribe returns its unsubscribe function; a throwing
// listener does not stop the others.
export class Emitter {
    listeners = new Set();
    subscribe(listener) {
        this.listeners.add(listener);
        return () => {
            this.listeners.delete(listener);
        };
    }
    emit(value) {
        for (const listener of [...this.listeners]) {
            try {
                listener(value);
            }
            catch (error) {
                queueMicrotask(() => {
                    throw error;
                });
            }
        }
    }
    get size() {
        return this.listeners.size;
    }
}
