// The realtime endpoint's token check, with Supabase Realtime's rules and wording: a JWT signed with the
// project's secret that carries `role` and `exp`, not expired; or the anon or service key itself.
import { jwtVerify, errors as joseErrors } from "jose";

const ROLES = new Set(["anon", "authenticated", "service_role"]);

/**
 * @typedef {{ok: true, role: string, claims: Record<string, unknown>, exp: number|null} | {ok: false, reason: string}} Verdict
 * @param {{anonKey: string, serviceKey: string, jwtSecret: string}} cfg
 * @returns {(token: string) => Promise<Verdict>}
 */
export function createTokenCheck({ anonKey, serviceKey, jwtSecret }) {
  const key = new TextEncoder().encode(jwtSecret);
  return async function check(token) {
    if (token === anonKey) return { ok: true, role: "anon", claims: { role: "anon" }, exp: null };
    if (token === serviceKey) return { ok: true, role: "service_role", claims: { role: "service_role" }, exp: null };
    if (typeof token !== "string" || token.split(".").length !== 3) {
      return { ok: false, reason: "MalformedJWT: The token provided is not a valid JWT" };
    }
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, key, { algorithms: ["HS256"] }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) {
        const ago = Math.max(0, Math.floor(Date.now() / 1000) - Number(e.payload?.exp ?? 0));
        return { ok: false, reason: `InvalidJWTToken: Token has expired ${ago} seconds ago` };
      }
      if (e instanceof joseErrors.JWSSignatureVerificationFailed) {
        return { ok: false, reason: "JwtSignatureError: Failed to validate JWT signature" };
      }
      return { ok: false, reason: "MalformedJWT: The token provided is not a valid JWT" };
    }
    if (typeof claims.role !== "string" || typeof claims.exp !== "number") {
      return { ok: false, reason: "InvalidJWTToken: Fields `role` and `exp` are required in JWT" };
    }
    if (!ROLES.has(claims.role)) {
      return { ok: false, reason: `Unauthorized: JWT role "${claims.role}" is not one of anon, authenticated, service_role` };
    }
    return { ok: true, role: claims.role, claims, exp: claims.exp };
  };
}
