// The JSON shapes of the spec and of smartsync's server (README "Push", "Pull",
// "Conflicts"), and the records the client keeps in IndexedDB.
export const RESOLUTION_STRATEGIES = ['server-wins', 'client-wins', 'merge', 'last-write-wins', 'manual'];
