// One HTTP request for src/web/request.rs: fetch with a timeout, the answer read as text. In JS rather than
// through web-sys and wasm-bindgen-futures: each await on the Rust side is a state machine in the wasm, and
// the Request/Headers/Response bindings are code of their own.
//
// Neither the call nor its promise throws: the promise resolves to { status, retryAfter, body } (retryAfter:
// the Retry-After header or null), or to { error } (what was thrown: a network error, a redirect, an invalid
// header; null when the timeout aborted the request). Its abort() aborts the request (destroy()). The global
// fetch is looked up at each call, so a fetch the page patches later is the one used.

/**
 * @param {string} url
 * @param {string} method
 * @param {string[]} headers names and values, alternating
 * @param {string | undefined} body
 * @param {boolean} keepalive
 * @param {number} timeoutMs
 */
export function request(url, method, headers, body, keepalive, timeoutMs) {
  let controller = null;
  // An async function runs up to its first await at once: the controller is there when this returns.
  const answer = (async () => {
    let timedOut = false;
    let timer;
    try {
      controller = new AbortController();
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
      const init = new Headers();
      for (let i = 0; i < headers.length; i += 2) init.append(headers[i], headers[i + 1]);
      // A redirect is never PostgREST's answer (a captive portal, a login page): it fails as a network error.
      const response = await fetch(url, {
        method,
        headers: init,
        body,
        keepalive,
        redirect: "error",
        signal: controller.signal,
      });
      const retryAfter = response.headers.get("Retry-After");
      return { status: response.status, retryAfter, body: await response.text() };
    } catch (error) {
      return { error: timedOut ? null : error };
    } finally {
      clearTimeout(timer);
    }
  })();
  answer.abort = () => controller?.abort();
  return answer;
}
