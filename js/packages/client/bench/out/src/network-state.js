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
export const DEFAULT_THRESHOLDS = { slowRttMs: 1500, failuresBeforeOffline: 2 };
/** The state when monitoring starts. */
export function initialNetworkState(browserOnline, now) {
    return derive({
        browserOnline,
        reachable: true,
        consecutiveFailures: 0,
        rttMs: null,
        connectionSlow: false,
        lastOnlineAt: browserOnline ? now : null,
        since: now,
    }, now, DEFAULT_THRESHOLDS);
}
/** The next state. */
export function reduceNetwork(state, event, now, thresholds = DEFAULT_THRESHOLDS) {
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
            if (next.consecutiveFailures >= thresholds.failuresBeforeOffline)
                next.reachable = false;
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
function derive(basis, now, thresholds, previous) {
    const online = basis.browserOnline && basis.reachable;
    const slow = online && (basis.connectionSlow || (basis.rttMs !== null && basis.rttMs > thresholds.slowRttMs));
    const status = !online ? 'offline' : slow ? 'slow' : 'online';
    let lastOnlineAt = basis.lastOnlineAt;
    if (online)
        lastOnlineAt = now;
    else if (previous && previous.status !== 'offline')
        lastOnlineAt = now; // just went offline: it was online until now
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
