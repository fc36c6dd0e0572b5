// The signed-in device: a JSON Web Token issued by the practice's auth server (examples/web.sh
// prints two). The app reads its claims only to configure the client (tenant, practice, user,
// device); the server verifies the token and takes them from there, never from the app.

export interface Session {
  token: string;
  tenantId: string;
  practiceId: number | string;
  userId: string;
  deviceId: string;
}

const KEY = 'vet-app:session';

/** The claims of a token (not verified: the server does that). */
export function readToken(token: string): Session {
  const part = token.split('.')[1];
  if (!part) throw new Error('not a JSON Web Token');
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
  const claims = JSON.parse(json) as Record<string, unknown>;
  const tenantId = claims.tenant_id;
  const deviceId = claims.client_id;
  if (typeof tenantId !== 'string' || typeof deviceId !== 'string') throw new Error('the token has no tenant_id or client_id claim');
  const practiceId = claims.practice_id;
  return {
    token,
    tenantId,
    practiceId: typeof practiceId === 'number' || typeof practiceId === 'string' ? practiceId : 1,
    userId: String(claims.sub ?? 'unknown'),
    deviceId,
  };
}

/** The session: a token in the address (?token=..., then removed from it) or the one kept from before. */
export function loadSession(): Session | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    const session = readToken(fromUrl);
    localStorage.setItem(KEY, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
    return session;
  }
  const kept = localStorage.getItem(KEY);
  return kept ? readToken(kept) : null;
}

export function saveSession(token: string): Session {
  const session = readToken(token);
  localStorage.setItem(KEY, token);
  return session;
}

export function signOut(): void {
  localStorage.removeItem(KEY);
}
