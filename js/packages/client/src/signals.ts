// The browser's signals as replaceable subscribables (TanStack's onlineManager idea):
// navigator.onLine with its events, document visibility, navigator.connection. Tests and
// other runtimes (React Native, workers, Node) pass their own; the defaults read the
// globals only when created, so importing this module touches no `window`.

/** Whether the browser believes it is online. */
export interface OnlineSignal {
  isOnline(): boolean;
  subscribe(listener: (online: boolean) => void): () => void;
}

/** Whether the page is visible (polling pauses while it is hidden). */
export interface VisibilitySignal {
  isVisible(): boolean;
  subscribe(listener: (visible: boolean) => void): () => void;
}

/** What navigator.connection tells (Network Information API; Chromium only). */
export interface ConnectionInfo {
  effectiveType?: string;
  /** Estimated round trip in ms. */
  rtt?: number;
  /** Estimated bandwidth in Mbit/s. */
  downlink?: number;
}

export interface ConnectionSignal {
  get(): ConnectionInfo | null;
  subscribe(listener: (info: ConnectionInfo | null) => void): () => void;
}

type EventTargetLike = {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
};

/** navigator.onLine and the window's online/offline events; always online where there is no navigator. */
export function browserOnlineSignal(): OnlineSignal {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  const target = globalThis as unknown as Partial<EventTargetLike>;
  return {
    isOnline: () => (typeof nav?.onLine === 'boolean' ? nav.onLine : true),
    subscribe(listener) {
      if (typeof target.addEventListener !== 'function' || typeof target.removeEventListener !== 'function') return () => undefined;
      const online = (): void => listener(true);
      const offline = (): void => listener(false);
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
export function browserVisibilitySignal(): VisibilitySignal {
  const doc = (globalThis as { document?: { visibilityState?: string } & Partial<EventTargetLike> }).document;
  return {
    isVisible: () => (doc?.visibilityState === undefined ? true : doc.visibilityState !== 'hidden'),
    subscribe(listener) {
      if (!doc || typeof doc.addEventListener !== 'function') return () => undefined;
      const changed = (): void => listener(doc.visibilityState !== 'hidden');
      doc.addEventListener('visibilitychange', changed);
      return () => doc.removeEventListener?.('visibilitychange', changed);
    },
  };
}

/** navigator.connection where the browser has it. */
export function browserConnectionSignal(): ConnectionSignal {
  const connection = (globalThis as { navigator?: { connection?: ConnectionInfo & Partial<EventTargetLike> } }).navigator?.connection;
  const read = (): ConnectionInfo | null => {
    if (!connection) return null;
    const info: ConnectionInfo = {};
    if (typeof connection.effectiveType === 'string') info.effectiveType = connection.effectiveType;
    if (typeof connection.rtt === 'number') info.rtt = connection.rtt;
    if (typeof connection.downlink === 'number') info.downlink = connection.downlink;
    return info;
  };
  return {
    get: read,
    subscribe(listener) {
      if (!connection || typeof connection.addEventListener !== 'function') return () => undefined;
      const changed = (): void => listener(read());
      connection.addEventListener('change', changed);
      return () => connection.removeEventListener?.('change', changed);
    },
  };
}

/** A signal a program sets: for tests, React Native's NetInfo, or an app's own logic. */
export function manualOnlineSignal(initial = true): OnlineSignal & { set(online: boolean): void } {
  let online = initial;
  const listeners = new Set<(online: boolean) => void>();
  return {
    isOnline: () => online,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(value) {
      if (value === online) return;
      online = value;
      for (const listener of [...listeners]) listener(value);
    },
  };
}

/** A visibility signal a program sets. */
export function manualVisibilitySignal(initial = true): VisibilitySignal & { set(visible: boolean): void } {
  let visible = initial;
  const listeners = new Set<(visible: boolean) => void>();
  return {
    isVisible: () => visible,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(value) {
      if (value === visible) return;
      visible = value;
      for (const listener of [...listeners]) listener(value);
    },
  };
}
