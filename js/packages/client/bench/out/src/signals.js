// The browser's signals as replaceable subscribables (TanStack's onlineManager idea):
// navigator.onLine with its events, document visibility, navigator.connection. Tests and
// other runtimes (React Native, workers, Node) pass their own; the defaults read the
// globals only when created, so importing this module touches no `window`.
/** navigator.onLine and the window's online/offline events; always online where there is no navigator. */
export function browserOnlineSignal() {
    const nav = globalThis.navigator;
    const target = globalThis;
    return {
        isOnline: () => (typeof nav?.onLine === 'boolean' ? nav.onLine : true),
        subscribe(listener) {
            if (typeof target.addEventListener !== 'function' || typeof target.removeEventListener !== 'function')
                return () => undefined;
            const online = () => listener(true);
            const offline = () => listener(false);
            target.addEventListener('online', online);
            target.addEventListener('offline', offline);
            return () => {
                target.removeEventListener?.('online', online);
                target.removeEventListener?.('offline', offline);
            };
        },
    };
}
/** document.visibilityState and its event; always visible where there is no document. */
export function browserVisibilitySignal() {
    const doc = globalThis.document;
    return {
        isVisible: () => (doc?.visibilityState === undefined ? true : doc.visibilityState !== 'hidden'),
        subscribe(listener) {
            if (!doc || typeof doc.addEventListener !== 'function')
                return () => undefined;
            const changed = () => listener(doc.visibilityState !== 'hidden');
            doc.addEventListener('visibilitychange', changed);
            return () => doc.removeEventListener?.('visibilitychange', changed);
        },
    };
}
/** navigator.connection where the browser has it. */
export function browserConnectionSignal() {
    const connection = globalThis.navigator?.connection;
    const read = () => {
        if (!connection)
            return null;
        const info = {};
        if (typeof connection.effectiveType === 'string')
            info.effectiveType = connection.effectiveType;
        if (typeof connection.rtt === 'number')
            info.rtt = connection.rtt;
        if (typeof connection.downlink === 'number')
            info.downlink = connection.downlink;
        return info;
    };
    return {
        get: read,
        subscribe(listener) {
            if (!connection || typeof connection.addEventListener !== 'function')
                return () => undefined;
            const changed = () => listener(read());
            connection.addEventListener('change', changed);
            return () => connection.removeEventListener?.('change', changed);
        },
    };
}
/** A signal a program sets: for tests, React Native's NetInfo, or an app's own logic. */
export function manualOnlineSignal(initial = true) {
    let online = initial;
    const listeners = new Set();
    return {
        isOnline: () => online,
        subscribe(listener) {
            listeners.add(listener);
            return () => listeners.delete(listener);
        },
        set(value) {
            if (value === online)
                return;
            online = value;
            for (const listener of [...listeners])
                listener(value);
        },
    };
}
/** A visibility signal a program sets. */
export function manualVisibilitySignal(initial = true) {
    let visible = initial;
    const listeners = new Set();
    return {
        isVisible: () => visible,
        subscribe(listener) {
            listeners.add(listener);
            return () => listeners.delete(listener);
        },
        set(value) {
            if (value === visible)
                return;
            visible = value;
            for (const listener of [...listeners])
                listener(value);
        },
    };
}
