// CORS as Supabase's gateway answers it, so that pages served from another localhost port (the library's browser
// tests, the demo app) can call the dev server.
const ALLOW_HEADERS = "authorization, apikey, content-type, prefer, x-client-info, accept-profile, content-profile, range";
const ALLOW_METHODS = "GET, POST, PATCH, PUT, DELETE, OPTIONS";

/** Headers for every response. @param {import("node:http").IncomingMessage} req */
export function corsHeaders(req) {
  const origin = req.headers.origin;
  return {
    "Access-Control-Allow-Origin": origin ?? "*",
    ...(origin ? { Vary: "Origin", "Access-Control-Allow-Credentials": "true" } : {}),
    "Access-Control-Expose-Headers": "Content-Range, Content-Location, Location, Retry-After, X-Total-Count",
  };
}

/** Extra headers for a preflight: the fixed list plus whatever else the browser asks for. */
export function preflightHeaders(req) {
  const requested = req.headers["access-control-request-headers"];
  return {
    ...corsHeaders(req),
    "Access-Control-Allow-Methods": ALLOW_METHODS,
    "Access-Control-Allow-Headers": requested ? `${ALLOW_HEADERS}, ${requested}` : ALLOW_HEADERS,
    "Access-Control-Max-Age": "3600",
  };
}
