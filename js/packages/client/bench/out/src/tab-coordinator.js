// One sync at a time across the tabs of an origin: a Web Lock (navigator.locks) held for
// the whole sync, so a tab that sleeps or closes mid-sync releases it (no stuck flag in
// storage); a BroadcastChannel tells the other tabs when a sync starts and ends and when
// the local data changed, so they refresh what they show. Where either API is missing
// (Node, old browsers) the tab simply coordinates with itself.
export class TabCoordinator {
    options;
    listeners = new Set();
    constructor(options) {
        this.options = options;
        options.channel?.addEventListener('message', (event) => {
            const message = event.data;
            if (!message || typeof message !== 'object' || message.tab === options.tab)
                return;
            for (const listener of [...this.listeners])
                listener(message);
        });
    }
    /** True when another tab can be told apart from this one (a lock manager is there). */
    get shared() {
        return this.options.locks !== null;
    }
    /** Runs fn holding the sync lock; `ran: false` at once when another tab holds it. */
    async runExclusive(fn) {
        const locks = this.options.locks;
        if (!locks)
            return { ran: true, value: await fn() };
        return locks.request(this.lockName, { ifAvailable: true }, async (lock) => {
            if (!lock)
                return { ran: false };
            return { ran: true, value: await fn() };
        });
    }
    /** Resolves once no tab holds the sync lock. */
    async waitForRelease() {
        const locks = this.options.locks;
        if (!locks)
            return;
        await locks.request(this.lockName, { mode: 'shared' }, () => undefined);
    }
    post(message) {
        try {
            this.options.channel?.postMessage({ ...message, tab: this.options.tab });
        }
        catch {
            // a closed channel or an uncloneable value: the other tabs will catch up on their next sync
        }
    }
    onMessage(listener) {
        this.listeners.add(listener);
        return () => {
            this.listeners.delete(listener);
        };
    }
    close() {
        this.listeners.clear();
        try {
            this.options.channel?.close();
        }
        catch {
            // closed
        }
    }
    get lockName() {
        return `${this.options.name}:sync`;
    }
}
/** navigator.locks where the runtime has it, else null. */
export function defaultLocks() {
    const locks = globalThis.navigator?.locks;
    return locks && typeof locks.request === 'function' ? locks : null;
}
/** A BroadcastChannel where the runtime has one, else null (in Node it does not keep the process alive). */
export function defaultChannel(name) {
    const Channel = globalThis.BroadcastChannel;
    if (typeof Channel !== 'function')
        return null;
    const channel = new Channel(name);
    channel.unref?.();
    return channel;
}
