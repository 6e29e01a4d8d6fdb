import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import { ApiError } from "./errors.js";

export const DEFAULTS = {
  anonKey: "dev-anon-key",
  serviceKey: "dev-service-key",
  jwtSecret: "dev-jwt-secret",
};

// The roles a token may switch to. Any other role would be an existing database role (postgres, say) that no
// client of a dev server should ever reach.
const ROLES = new Set(["anon", "authenticated", "service_role"]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s) => typeof s === "string" && UUID.test(s);

const secretKey = (secret) => new TextEncoder().encode(secret);

/**
 * A token as Supabase's auth would issue one for a signed-in user.
 * @param {{sub: string, role?: string, secret?: string, expiresIn?: number|string}} opts expiresIn in seconds or a jose span ("1h")
 */
export async function signToken({ sub, role = "authenticated", secret = DEFAULTS.jwtSecret, expiresIn = "24h" }) {
  return new SignJWT({ sub, role, aud: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(typeof expiresIn === "number" ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn)
    .sign(secretKey(secret));
}

const jwtError = (message) =>
  new ApiError(401, "PGRST301", message, {
    headers: { "WWW-Authenticate": `Bearer error="invalid_token", error_description="${message}"` },
  });

/**
 * Who a request is, from its `apikey` and `Authorization` headers, as Supabase's gateway and PostgREST decide it.
 * @param {{anonKey: string, serviceKey: string, jwtSecret: string}} cfg
 */
export function createAuth({ anonKey, serviceKey, jwtSecret }) {
  const key = secretKey(jwtSecret);
  const keyRole = (k) => (k === anonKey ? "anon" : k === serviceKey ? "service_role" : null);

  /**
   * @param {import("node:http").IncomingHttpHeaders} headers
   * @param {URLSearchParams} query Supabase also takes the key as `?apikey=`
   * @returns {Promise<{role: string, claims: Record<string, unknown>, authenticated: boolean}>}
   */
  return async function authenticate(headers, query) {
    const apikey = headers.apikey ?? query.get("apikey");
    if (!apikey) {
      throw new ApiError(401, null, "No API key found in request", {
        hint: "No `apikey` request header or url param was found.",
      });
    }
    if (!keyRole(apikey)) {
      throw new ApiError(401, null, "Invalid API key", { hint: "Double check your Supabase `anon` or `service_role` API key." });
    }
    const auth = headers.authorization;
    let token = null;
    if (auth) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m) throw jwtError("Expected a Bearer token in the Authorization header");
      token = m[1];
    }
    // supabase-js sends the API key itself as the bearer token until a user signs in.
    const byKey = keyRole(token ?? apikey);
    if (byKey) return { role: byKey, claims: { role: byKey }, authenticated: byKey !== "anon" };

    const parts = token.split(".").length;
    if (parts !== 3) throw jwtError(`Expected 3 parts in JWT; got ${parts}`);
    let claims;
    try {
      // A token without exp would be valid forever: refused, as Supabase never issues one.
      ({ payload: claims } = await jwtVerify(token, key, { algorithms: ["HS256"], requiredClaims: ["exp"] }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw jwtError("JWT expired");
      if (e instanceof joseErrors.JWTClaimValidationFailed && e.claim === "exp") throw jwtError("JWT has no exp claim");
      if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw jwtError("JWSError JWSInvalidSignature");
      throw jwtError(`JWT could not be decoded: ${e.code ?? e.message}`);
    }
    // PostgREST's rule: a token without a role claim runs as the anonymous role.
    const role = typeof claims.role === "string" ? claims.role : "anon";
    if (!ROLES.has(role)) throw jwtError(`JWT role "${role}" is not one of anon, authenticated, service_role`);
    return { role, claims, authenticated: true };
  };
}
