// The network monitor's state machine, apart from the timers and listeners that drive it
// (network-monitor.ts). Pure: an event and the time in, the next state out.
//
//   browser offline                      -> offline at once (navigator.onLine false is reliable)
//   browser online                       -> still offline until a heartbeat gets through
//                                           (navigator.onLine true is not: captive portals,
//                                           a LAN without internet, a server that is down)
//   heartbeat answered                   -> online, or slow when the smoothed round trip
//                                           is above slowRttMs
//   `failuresBeforeOffline` heartbeats   -> offline
//   failed in a row (timeouts included)
//   connection info 2g / slow-2g / high rtt -> slow (while online)

export type NetworkStatus = 'online' | 'offline' | 'slow';

/** The spec's network state, plus what it is derived from. */
export interface NetworkState {
  status: NetworkStatus;
  isOnline: boolean;
  isOffline: boolean;
  isSlow: boolean;
  /** Offline: milliseconds since the device was last online. Online or slow: 0. */
  timeSinceOnline: number;
  /** When the device was last seen online (epoch ms), or null. */
  lastOnlineAt: number | null;
  /** The smoothed heartbeat round trip in ms, or null before the first. */
  rttMs: number | null;
  browserOnline: boolean;
  /** The server answered the last heartbeat (or none has failed enough yet). */
  reachable: boolean;
  consecutiveFailures: number;
  connectionSlow: boolean;
  /** When this state began counting timeSinceOnline from (the monitor's start when never online). */
  since: number;
}

export type NetworkEvent =
  | { type: 'browser-online' }
  | { type: 'browser-offline' }
  | { type: 'heartbeat-ok'; rttMs: number }
  | { type: 'heartbeat-failed' }
  | { type: 'connection'; effectiveType?: string | undefined; rtt?: number | undefined }
  | { type: 'tick' };

export interface NetworkThresholds {
  /** A smoothed round trip above this is slow (default 1500 ms). */
  slowRttMs: number;
  /** Heartbeats that must fail in a row before the device counts as offline (default 2). */
  failuresBeforeOffline: number;
}

export const DEFAULT_THRESHOLDS: NetworkThresholds = { slowRttMs: 1500, failuresBeforeOffline: 2 };

/** The state when monitoring starts. */
export function initialNetworkState(browserOnline: boolean, now: number): NetworkState {
  return derive(
    {
      browserOnline,
      reachable: true,
      consecutiveFailures: 0,
      rttMs: null,
      connectionSlow: false,
      lastOnlineAt: browserOnline ? now : null,
      since: now,
    },
    now,
    DEFAULT_THRESHOLDS,
  );
}

/** The next state. */
export function reduceNetwork(state: NetworkState, event: NetworkEvent, now: number, thresholds: NetworkThresholds = DEFAULT_THRESHOLDS): NetworkState {
  const next = { ...state };
  switch (event.type) {
    case 'browser-offline':
      next.browserOnline = false;
      break;
    case 'browser-online':
      next.browserOnline = true;
      next.reachable = false; // to be confirmed by a heartbeat
      next.consecutiveFailures = 0;
      break;
    case 'heartbeat-ok':
      next.reachable = true;
      next.consecutiveFailures = 0;
      next.rttMs = state.rttMs === null ? event.rttMs : Math.round(state.rttMs * 0.7 + event.rttMs * 0.3);
      break;
    case 'heartbeat-failed':
      next.consecutiveFailures = state.consecutiveFailures + 1;
      if (next.consecutiveFailures >= thresholds.failuresBeforeOffline) next.reachable = false;
      break;
    case 'connection':
      next.connectionSlow =
        event.effectiveType === 'slow-2g' || event.effectiveType === '2g' || (typeof event.rtt === 'number' && event.rtt > thresholds.slowRttMs);
      break;
    case 'tick':
      break;
  }
  return derive(next, now, thresholds, state);
}

type Basis = Pick<NetworkState, 'browserOnline' | 'reachable' | 'consecutiveFailures' | 'rttMs' | 'connectionSlow' | 'lastOnlineAt' | 'since'>;

function derive(basis: Basis, now: number, thresholds: NetworkThresholds, previous?: NetworkState): NetworkState {
  const online = basis.browserOnline && basis.reachable;
  const slow = online && (basis.connectionSlow || (basis.rttMs !== null && basis.rttMs > thresholds.slowRttMs));
  const status: NetworkStatus = !online ? 'offline' : slow ? 'slow' : 'online';
  let lastOnlineAt = basis.lastOnlineAt;
  if (online) lastOnlineAt = now;
  else if (previous && previous.status !== 'offline') lastOnlineAt = now; // just went offline: it was online until now
  return {
    status,
    isOnline: status !== 'offline',
    isOffline: status === 'offline',
    isSlow: status === 'slow',
    timeSinceOnline: online ? 0 : Math.max(0, now - (lastOnlineAt ?? basis.since)),
    lastOnlineAt,
    rttMs: basis.rttMs,
    browserOnline: basis.browserOnline,
    reachable: basis.reachable,
    consecutiveFailures: basis.consecutiveFailures,
    connectionSlow: basis.connectionSlow,
    since: basis.since,
  };
}
