// SmartSyncProvider hands a client instance (createSmartSync or configureSmartSync) to the
// hooks below it. It starts nothing: the app calls initializeNetworkMonitoring() once, as
// the spec shows, and closes the instance when it is done with it.

import { createContext, useContext, type ReactNode } from 'react';
import type { SmartSync } from '@smartsync/client';
import { MissingProviderError } from './errors.js';

const SmartSyncContext = createContext<SmartSync | null>(null);
SmartSyncContext.displayName = 'SmartSync';

export interface SmartSyncProviderProps {
  /** The client instance the hooks read. */
  client: SmartSync;
  children?: ReactNode;
}

export function SmartSyncProvider({ client, children }: SmartSyncProviderProps): ReactNode {
  return <SmartSyncContext.Provider value={client}>{children}</SmartSyncContext.Provider>;
}

/** The client instance of the nearest SmartSyncProvider; throws MissingProviderError without one. */
export function useSmartSync(): SmartSync {
  const client = useContext(SmartSyncContext);
  if (!client) throw new MissingProviderError();
  return client;
}
