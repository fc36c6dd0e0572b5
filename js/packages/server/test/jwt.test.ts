/**
 * Who is calling comes from a verified JWT only. Every way a token can fail
 * is a 401 before the database is asked; what a valid token may do is the
 * database's decision (its role, its tenant).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTokenVerifier } from "../src/jwt.js";
import { call, closeAdmin, SECRET, startServer, tablet, token, type TestServer } from "./helpers.js";

let srv: TestServer;

beforeAll(async () => {
  srv = await startServer({ live: { signal: "none" } });
});
afterAll(async () => {
  await srv.close();
  await closeAdmin();
});

describe("a token that does not verify is 401 with PostgREST's codes", () => {
  test("no token: PGRST302 and WWW-Authenticate: Bearer", async () => {
    const res = await call(`${srv.url}/pull`, undefined);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({
      code: "PGRST302",
      message: "Anonymous access is disabled",
      details: null,
      hint: "Send a JWT in the Authorization header: Bearer <token>.",
    });
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
  });

  const cases: Array<[string, () => Promise<string>, string]> = [
    ["expired", () => token(tablet, { expiresIn: Math.floor(Date.now() / 1000) - 60 }), "JWT expired"],
    ["signed with another secret", () => token(tablet, { secret: "another-secret-another-secret-xx" }), "JWT signature does not match"],
    ["unsigned (alg none)", async () => new UnsecuredJWT(tablet).setIssuedAt().setExpirationTime("1h").encode(), "JWT algorithm is not accepted"],
    ["not a JWT", async () => "not.a.jwt", "JWT is malformed or not signed"],
    [
      "not yet valid (nbf in the future)",
      async () =>
        new SignJWT(tablet)
          .setProtectedHeader({ alg: "HS256" })
          .setNotBefore(Math.floor(Date.now() / 1000) + 3600)
          .setExpirationTime("2h")
          .sign(new TextEncoder().encode(SECRET)),
      "JWT claim nbf is not valid",
    ],
  ];
  test.each(cases)("%s", async (_what, make, message) => {
    const res = await call(`${srv.url}/pull`, await make());
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("PGRST301");
    expect(res.body.message).toContain(message);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_token"/);
  });

  test("an Authorization header that is not Bearer", async () => {
    const res = await call(`${srv.url}/pull`, undefined, { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("PGRST301");
  });

  test("every endpoint that reads or writes needs a token; health and metrics do not", async () => {
    for (const [method, path] of [
      ["POST", "/push"],
      ["GET", "/pull"],
      ["GET", "/changed"],
      ["GET", "/conflicts"],
      ["GET", "/conflicts/stats"],
      ["POST", "/conflicts/1/resolve"],
      ["GET", "/live"],
    ] as const) {
      const res = await call(`${srv.url}${path}`, undefined, { method, ...(method === "POST" ? { body: {} } : {}) });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    expect((await call(`${srv.url}/health`, undefined)).status).toBe(200);
    expect((await call(`${srv.url}/metrics`, undefined)).status).toBe(200);
  });
});

describe("a valid token: the database decides", () => {
  test("a role that authenticator may not become is refused (42501, 403)", async () => {
    const res = await call(`${srv.url}/pull`, await token({ ...tablet, role: "postgres" }));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("42501");
  });

  test("a token without a role runs as the anonymous role, which may call nothing (403)", async () => {
    const { role: _role, ...noRole } = tablet;
    const res = await call(`${srv.url}/pull`, await token(noRole));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("42501");
  });

  test("a token without a tenant is SS201, 401; of a tenant not provisioned SS203, 403", async () => {
    const { tenant_id: _t, ...noTenant } = tablet;
    const none = await call(`${srv.url}/pull`, await token(noTenant));
    expect(none.status).toBe(401);
    expect(none.body.code).toBe("SS201");
    const unknown = await call(`${srv.url}/pull`, await token({ ...tablet, tenant_id: "nobody" }));
    expect(unknown.status).toBe(403);
    expect(unknown.body.code).toBe("SS203");
  });
});

describe("public keys", () => {
  test("RS256 with a public key file (PEM); an HS256 token is then refused", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const dir = mkdtempSync(join(tmpdir(), "smartsync-jwt-"));
    const file = join(dir, "public.pem");
    writeFileSync(file, await exportSPKI(publicKey));
    const { readFileSync } = await import("node:fs");
    const s = await startServer({ jwt: { publicKey: readFileSync(file, "utf8") }, live: { signal: "none" } });
    try {
      const good = await new SignJWT(tablet).setProtectedHeader({ alg: "RS256" }).setExpirationTime("1h").sign(privateKey);
      expect((await call(`${s.url}/conflicts/stats`, good)).status).toBe(200);
      expect((await call(`${s.url}/conflicts/stats`, await token(tablet))).status).toBe(401);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("ES256 with a JWK; a token signed by another key is refused", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const other = await generateKeyPair("ES256");
    const s = await startServer({ jwt: { publicKey: JSON.stringify(await exportJWK(publicKey)) }, live: { signal: "none" } });
    try {
      const good = await new SignJWT(tablet).setProtectedHeader({ alg: "ES256" }).setExpirationTime("1h").sign(privateKey);
      expect((await call(`${s.url}/conflicts/stats`, good)).status).toBe(200);
      const bad = await new SignJWT(tablet).setProtectedHeader({ alg: "ES256" }).setExpirationTime("1h").sign(other.privateKey);
      const res = await call(`${s.url}/conflicts/stats`, bad);
      expect(res.status).toBe(401);
      expect(res.body.message).toBe("JWT signature does not match");
    } finally {
      await s.close();
    }
  });

  test("a JWKS URL: the key is found by kid; an unknown kid is refused; an audience is checked", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "key-1", alg: "RS256", use: "sig" };
    const jwks: Server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    const port = (jwks.address() as AddressInfo).port;
    const s = await startServer({
      jwt: { jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`, audience: "smartsync" },
      live: { signal: "none" },
    });
    try {
      const sign = (kid: string, aud: string) =>
        new SignJWT(tablet).setProtectedHeader({ alg: "RS256", kid }).setAudience(aud).setExpirationTime("1h").sign(privateKey);
      expect((await call(`${s.url}/conflicts/stats`, await sign("key-1", "smartsync"))).status).toBe(200);
      const unknownKid = await call(`${s.url}/conflicts/stats`, await sign("key-2", "smartsync"));
      expect(unknownKid.status).toBe(401);
      expect(unknownKid.body.message).toBe("no key of the JWKS matches the JWT");
      const wrongAud = await call(`${s.url}/conflicts/stats`, await sign("key-1", "someone-else"));
      expect(wrongAud.status).toBe(401);
      expect(wrongAud.body.message).toContain("JWT claim aud is not valid");
    } finally {
      await s.close();
      await new Promise<void>((resolve) => jwks.close(() => resolve()));
    }
  });
});

describe("remembered tokens", () => {
  test("a verified token is remembered, but its exp is checked on every use, and the memory expires", async () => {
    let now = Date.now();
    const verify = createTokenVerifier({ secret: SECRET, cacheSeconds: 60 }, () => now);
    const exp = Math.floor(now / 1000) + 120;
    const jwt = await new SignJWT(tablet).setProtectedHeader({ alg: "HS256" }).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
    expect((await verify(jwt)).tenant_id).toBe("happy-paws");
    now += 30_000;
    expect((await verify(jwt)).tenant_id).toBe("happy-paws"); // remembered
    now += 100_000; // past exp (and past the memory's 60 s): verified again, and refused
    await expect(verify(jwt)).rejects.toMatchObject({ status: 401, body: { code: "PGRST301", message: "JWT expired" } });
  });

  test("a remembered token is not accepted with a different signature", async () => {
    const verify = createTokenVerifier({ secret: SECRET });
    const jwt = await token(tablet);
    await verify(jwt);
    const forged = `${jwt.slice(0, jwt.lastIndexOf("."))}.${"A".repeat(43)}`;
    await expect(verify(forged)).rejects.toMatchObject({ status: 401 });
  });
});
