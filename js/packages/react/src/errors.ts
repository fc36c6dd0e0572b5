import { SmartSyncError } from '@smartsync/client';

/** A hook was used outside a SmartSyncProvider. */
export class MissingProviderError extends SmartSyncError {
  override name = 'MissingProviderError';
  constructor() {
    super('a smartsync hook needs a <SmartSyncProvider client={...}> above it');
  }
}
