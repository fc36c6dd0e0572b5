// The front desk of a veterinary practice on smartsync: one client instance per signed-in
// device (configureSmartSync, so the spec's module functions work in the page too), the
// network monitor started as the spec shows, and the app under a SmartSyncProvider.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import {
  configureSmartSync,
  conflictStorage,
  getSyncEngine,
  httpTransport,
  initializeNetworkMonitoring,
  localStore,
  resolveConflict,
  syncQueueStorage,
} from '@smartsync/client';
import { SmartSyncProvider } from '@smartsync/react';
import { App, SignIn } from './App.js';
import { loadSession, type Session } from './session.js';
import './styles.css';

const root = createRoot(document.getElementById('root')!);

function start(session: Session): void {
  const client = configureSmartSync({
    transport: httpTransport({ baseUrl: '/api/sync', getToken: () => session.token }),
    tenantId: session.tenantId,
    practiceId: session.practiceId,
    userId: session.userId,
    deviceId: session.deviceId,
    entityTypes: ['clients', 'practitioners', { name: 'pets', indexes: ['client_id'] }, { name: 'appointments', indexes: ['pet_id'] }],
    batchSize: 50,
    maxRetries: 3,
  });

  // In app initialization
  initializeNetworkMonitoring({
    syncOnReconnect: true,
    autoSyncEnabled: true,
  });

  // the spec's modules, for the console (and the browser tests, which call them as the spec does)
  Object.assign(window, { smartsync: { client, syncQueueStorage, conflictStorage, getSyncEngine, resolveConflict, localStore } });

  root.render(
    <StrictMode>
      <SmartSyncProvider client={client}>
        <App session={session} />
      </SmartSyncProvider>
    </StrictMode>,
  );
}

const session = loadSession();
if (session) start(session);
else root.render(<SignIn onSignIn={start} />);

// the app shell for offline reloads (not in development: Vite serves modules one by one)
if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  void navigator.serviceWorker.register('/sw.js').catch((error: unknown) => console.warn('service worker:', error));
}
