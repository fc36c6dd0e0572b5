/**
 * JWT verification (jose): an HS256 secret, a public key (PEM or JWK file
 * contents), or a JWKS URL. A missing, malformed, expired, not yet valid,
 * wrongly signed or unsigned (`alg: none`) token is a 401 with PostgREST's
 * codes; the claims come from the verified token only.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { ConfigError, HttpError, ServerErrorCode } from "./errors.js";
import type { SyncRequest } from "./request-input.js";

/** How tokens are verified: exactly one of secret, publicKey, jwksUrl. */
export interface JwtOptions {
  /** HS256/HS384/HS512 shared secret (PostgREST's jwt-secret); at least 32 characters */
  secret?: string;
  /** a public key: PEM text (SPKI "PUBLIC KEY" or an X.509 certificate) or a JWK as JSON text */
  publicKey?: string;
  /** a JWKS endpoint (e.g. https://issuer/.well-known/jwks.json); keys are fetched and cached */
  jwksUrl?: string;
  /** when set, the token's `aud` must include it */
  audience?: string;
  /** when set, the token's `iss` must be it */
  issuer?: string;
  /** seconds of clock skew tolerated for exp and nbf (default 0) */
  clockToleranceSeconds?: number;
  /**
   * How long a verified token is remembered, in seconds (default 300; 0: verify every
   * request). A device sends the same token with every request; remembering it spares
   * the signature check (an asynchronous WebCrypto call), while exp and nbf are still
   * checked on every use. Like PostgREST's jwt-cache-max-lifetime, a key removed from
   * a JWKS keeps accepting the tokens it signed for at most this long.
   */
  cacheSeconds?: number;
  /** the most tokens remembered (default 10000) */
  cacheSize?: number;
}

/** Verified claims: the token's JSON payload. */
export type Claims = JWTPayload & Record<string, unknown>;

/** Verifies a bearer token and returns its claims, or throws a 401 HttpError. */
export type TokenVerifier = (token: string) => Promise<Claims>;

const HMAC_ALGS = ["HS256", "HS384", "HS512"];

/** The algorithms a public key may sign with (a key never verifies another kind). */
function algorithmsOf(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    case "rsa-pss":
      return ["PS256", "PS384", "PS512"];
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === "prime256v1" || curve === "P-256") return ["ES256"];
      if (curve === "secp384r1" || curve === "P-384") return ["ES384"];
      if (curve === "secp521r1" || curve === "P-521") return ["ES512"];
      return [];
    }
    case "ed25519":
      return ["EdDSA", "Ed25519"];
    default:
      return [];
  }
}

/** Reads a public key from PEM or JWK text. */
function publicKeyFrom(text: string): KeyObject {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith("{")) {
      const jwk = JSON.parse(trimmed) as Record<string, unknown>;
      if ("d" in jwk) throw new ConfigError("the JWT public key is a private JWK; give the public part only");
      return createPublicKey({ key: jwk as unknown as import("node:crypto").JsonWebKey, format: "jwk" });
    }
    return createPublicKey(trimmed);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read the JWT public key: ${(err as Error).message}`, { cause: err });
  }
}

/** 401 for a token that did not verify; the reason is safe to show (never the token). */
function invalidToken(message: string, cause?: unknown): HttpError {
  return new HttpError(
    401,
    { code: ServerErrorCode.invalidToken, message, hint: "Send a valid JWT in the Authorization header: Bearer <token>." },
    {
      headers: { "WWW-Authenticate": `Bearer error="invalid_token", error_description="${message.replace(/["\\]/g, "'")}"` },
      cause,
    },
  );
}

/** 401 for a request without a token. */
export function missingToken(): HttpError {
  return new HttpError(
    401,
    {
      code: ServerErrorCode.missingToken,
      message: "Anonymous access is disabled",
      hint: "Send a JWT in the Authorization header: Bearer <token>.",
    },
    { headers: { "WWW-Authenticate": "Bearer" } },
  );
}

/** Makes the verifier for one configuration; throws ConfigError on a bad one. */
export function createTokenVerifier(options: JwtOptions, now: () => number = Date.now): TokenVerifier {
  const given = [options.secret, options.publicKey, options.jwksUrl].filter((v) => v !== undefined && v !== "");
  if (given.length !== 1) {
    throw new ConfigError("give exactly one of the JWT secret, public key or JWKS URL");
  }
  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (options.secret !== undefined && options.secret !== "") {
    if (options.secret.length < 32) throw new ConfigError("the JWT secret must be at least 32 characters long");
    // imported once per algorithm: importing the raw secret on every request costs more than the HMAC
    const raw = new TextEncoder().encode(options.secret);
    const imported = new Map<string, Promise<CryptoKey>>();
    key = ((header: { alg?: string }) => {
      const alg = header.alg ?? "";
      if (!HMAC_ALGS.includes(alg)) return raw;
      let k = imported.get(alg);
      if (k === undefined) {
        k = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: `SHA-${alg.slice(2)}` }, false, ["verify"]);
        imported.set(alg, k);
      }
      return k;
    }) as JWTVerifyGetKey;
    algorithms = HMAC_ALGS;
  } else if (options.publicKey !== undefined && options.publicKey !== "") {
    const pub = publicKeyFrom(options.publicKey);
    algorithms = algorithmsOf(pub);
    if (algorithms.length === 0) throw new ConfigError(`unsupported JWT public key type ${pub.asymmetricKeyType ?? "?"}`);
    key = pub;
  } else {
    let url: URL;
    try {
      url = new URL(options.jwksUrl as string);
    } catch (err) {
      throw new ConfigError(`invalid JWKS URL ${JSON.stringify(options.jwksUrl)}`, { cause: err });
    }
    key = createRemoteJWKSet(url);
    algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];
  }

  const cacheMs = (options.cacheSeconds ?? 300) * 1000;
  const cacheSize = options.cacheSize ?? 10_000;
  const tolerance = (options.clockToleranceSeconds ?? 0) * 1000;
  /** token -> its claims and when it was verified; insertion order is age (oldest first) */
  const cache = new Map<string, { claims: Claims; verifiedAt: number }>();

  /** The remembered claims of token, if it is still within its validity and the cache's lifetime. */
  const remembered = (token: string): Claims | undefined => {
    const hit = cache.get(token);
    if (hit === undefined) return undefined;
    const t = now();
    const { exp, nbf } = hit.claims;
    if (
      t - hit.verifiedAt > cacheMs ||
      (typeof exp === "number" && t >= exp * 1000 + tolerance) ||
      (typeof nbf === "number" && t < nbf * 1000 - tolerance)
    ) {
      cache.delete(token);
      return undefined; // verified again, which says why it fails
    }
    return hit.claims;
  };

  return async (token: string): Promise<Claims> => {
    if (cacheMs > 0) {
      const claims = remembered(token);
      if (claims !== undefined) return claims;
    }
    try {
      const verifyOptions = {
        algorithms,
        currentDate: new Date(now()),
        clockTolerance: options.clockToleranceSeconds ?? 0,
        ...(options.audience !== undefined ? { audience: options.audience } : {}),
        ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
      };
      const { payload } =
        typeof key === "function"
          ? await jwtVerify(token, key, verifyOptions)
          : await jwtVerify(token, key, verifyOptions);
      if (cacheMs > 0) {
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
        cache.set(token, { claims: payload as Claims, verifiedAt: now() });
      }
      return payload as Claims;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw invalidToken("JWT expired", err);
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw invalidToken(`JWT claim ${err.claim} is not valid: ${err.reason}`, err);
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw invalidToken("JWT signature does not match", err);
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw invalidToken("JWT algorithm is not accepted", err);
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw invalidToken("no key of the JWKS matches the JWT", err);
      if (err instanceof joseErrors.JWKSTimeout || (err instanceof Error && err.name === "TypeError")) {
        throw new HttpError(
          503,
          { code: ServerErrorCode.unavailable, message: "the JWKS could not be fetched to verify the JWT" },
          { headers: { "Retry-After": "5" }, cause: err },
        );
      }
      throw invalidToken("JWT is malformed or not signed", err);
    }
  };
}

/**
 * The bearer token of a request: the Authorization header, or for
 * EventSource (which cannot send headers) the access_token query parameter.
 */
export function bearerToken(request: SyncRequest, allowQuery: boolean): string | undefined {
  const header = request.header("authorization");
  if (header !== null) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m === null) throw invalidToken("the Authorization header is not Bearer <token>");
    return m[1];
  }
  if (allowQuery) {
    const q = request.url.searchParams.get("access_token");
    if (q !== null && q !== "") return q;
  }
  return undefined;
}
