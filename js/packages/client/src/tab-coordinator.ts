// One sync at a time across the tabs of an origin: a Web Lock (navigator.locks) held for
// the whole sync, so a tab that sleeps or closes mid-sync releases it (no stuck flag in
// storage); a BroadcastChannel tells the other tabs when a sync starts and ends and when
// the local data changed, so they refresh what they show. Where either API is missing
// (Node, old browsers) the tab simply coordinates with itself.

/** The part of the Web Locks API the client uses. */
export interface LockManagerLike {
  request<T>(name: string, options: { ifAvailable?: boolean; mode?: 'exclusive' | 'shared' }, callback: (lock: unknown) => Promise<T> | T): Promise<T>;
}

/** The part of BroadcastChannel the client uses. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}

/** What tabs tell each other. */
export type TabMessageBody = { type: 'sync-start' } | { type: 'sync-end'; result: unknown } | { type: 'changed'; entityTypes: string[] };

/** A message with the sending tab's id. */
export type TabMessage = TabMessageBody & { tab: string };

export interface TabCoordinatorOptions {
  name: string;
  tab: string;
  locks: LockManagerLike | null;
  channel: BroadcastChannelLike | null;
}

export class TabCoordinator {
  private readonly listeners = new Set<(message: TabMessage) => void>();

  constructor(private readonly options: TabCoordinatorOptions) {
    options.channel?.addEventListener('message', (event) => {
      const message = event.data as TabMessage | null;
      if (!message || typeof message !== 'object' || message.tab === options.tab) return;
      for (const listener of [...this.listeners]) listener(message);
    });
  }

  /** True when another tab can be told apart from this one (a lock manager is there). */
  get shared(): boolean {
    return this.options.locks !== null;
  }

  /** Runs fn holding the sync lock; `ran: false` at once when another tab holds it. */
  async runExclusive<T>(fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    const locks = this.options.locks;
    if (!locks) return { ran: true, value: await fn() };
    return locks.request(this.lockName, { ifAvailable: true }, async (lock) => {
      if (!lock) return { ran: false as const };
      return { ran: true as const, value: await fn() };
    });
  }

  /** Resolves once no tab holds the sync lock. */
  async waitForRelease(): Promise<void> {
    const locks = this.options.locks;
    if (!locks) return;
    await locks.request(this.lockName, { mode: 'shared' }, () => undefined);
  }

  post(message: TabMessageBody): void {
    try {
      this.options.channel?.postMessage({ ...message, tab: this.options.tab });
    } catch {
      // a closed channel or an uncloneable value: the other tabs will catch up on their next sync
    }
  }

  onMessage(listener: (message: TabMessage) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  close(): void {
    this.listeners.clear();
    try {
      this.options.channel?.close();
    } catch {
      // closed
    }
  }

  private get lockName(): string {
    return `${this.options.name}:sync`;
  }
}

/** navigator.locks where the runtime has it, else null. */
export function defaultLocks(): LockManagerLike | null {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  return locks && typeof locks.request === 'function' ? locks : null;
}

/** A BroadcastChannel where the runtime has one, else null (in Node it does not keep the process alive). */
export function defaultChannel(name: string): BroadcastChannelLike | null {
  const Channel = (globalThis as { BroadcastChannel?: new (name: string) => BroadcastChannelLike & { unref?: () => void } }).BroadcastChannel;
  if (typeof Channel !== 'function') return null;
  const channel = new Channel(name);
  channel.unref?.();
  return channel;
}
