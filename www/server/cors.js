// CORS for pages on other origins (the demo app, the library's browser tests): only allowed origins get CORS
// headers, so no other site can read or write through a user's browser. By default, any loopback origin.
const ALLOW_HEADERS = "authorization, apikey, content-type, prefer, x-client-info, accept-profile, content-profile, range";
const ALLOW_METHODS = "GET, POST, PATCH, PUT, DELETE, OPTIONS";

/** Every page served from this machine, on any port. */
export const LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"];

/**
 * A test for allowed origins: entries are exact origins (`http://app.test:5173`), or end in `:*` for any port.
 * @param {string[]} allowed
 */
export function originMatcher(allowed) {
  const exact = new Set();
  const anyPort = [];
  for (const entry of allowed) {
    if (entry.endsWith(":*")) anyPort.push(entry.slice(0, -1));
    else exact.add(entry.replace(/\/+$/, ""));
  }
  return (origin) => {
    if (typeof origin !== "string") return false;
    if (exact.has(origin)) return true;
    return anyPort.some((prefix) => origin.startsWith(prefix) && /^\d{1,5}$/.test(origin.slice(prefix.length)));
  };
}

/**
 * CORS for one server.
 * @param {(origin: string|undefined) => boolean} allowed
 */
export function createCors(allowed) {
  /** Headers for every response: none for an origin that is not allowed. @param {import("node:http").IncomingMessage} req */
  function corsHeaders(req) {
    const origin = req.headers.origin;
    if (!allowed(origin)) return origin ? { Vary: "Origin" } : {};
    return {
      "Access-Control-Allow-Origin": origin,
      Vary: "Origin",
      "Access-Control-Allow-Credentials": "true",
      "Access-Control-Expose-Headers": "Content-Range, Content-Location, Location, Retry-After, X-Total-Count",
    };
  }
  /** Extra headers for a preflight: the fixed list plus whatever else the browser asks for. */
  function preflightHeaders(req) {
    const base = corsHeaders(req);
    if (!base["Access-Control-Allow-Origin"]) return base;
    const requested = req.headers["access-control-request-headers"];
    return {
      ...base,
      "Access-Control-Allow-Methods": ALLOW_METHODS,
      "Access-Control-Allow-Headers": requested ? `${ALLOW_HEADERS}, ${requested}` : ALLOW_HEADERS,
      "Access-Control-Max-Age": "3600",
    };
  }
  return { corsHeaders, preflightHeaders };
}
