// The React tests' client: @smartsync/client on a fresh fake-indexeddb, speaking to the
// client's own in-memory model of the protocol (its unit tests' FakeServer), with online
// and visibility signals the tests set. Real PostgreSQL and a real browser come with the
// example app's browser tests.

import type { ReactNode } from 'react';
import { SmartSyncProvider } from '../src/index.js';
import { makeClient, type TestClient } from '../../client/test/unit/helpers.js';

export { makeClient, type TestClient };

/** A wrapper for render()/renderHook() that provides the client. */
export function providing(client: TestClient): (props: { children: ReactNode }) => ReactNode {
  return function Wrapper({ children }) {
    return <SmartSyncProvider client={client.sync}>{children}</SmartSyncProvider>;
  };
}
