// Which Host headers the server answers: loopback names on any port, plus configured names. Checked on every
// request against DNS rebinding, where a hostile page's own name is made to resolve to 127.0.0.1.
const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** @param {string} name a host name, without port */
export const isLoopbackName = (name) => LOOPBACK_NAMES.has(name.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(name);

/** The name part of a Host header: `[::1]:8080` -> `[::1]`, `example.test:80` -> `example.test`. */
function hostName(header) {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(header.trim());
  if (!m || (m[2] !== undefined && Number(m[2]) > 65535)) return null;
  return m[1].toLowerCase();
}

/** @param {string[]} extra names allowed besides the loopback ones (the bound address, --allow-host) */
export function hostMatcher(extra) {
  const names = new Set(extra.map((n) => n.toLowerCase()).map((n) => (n.includes(":") && !n.startsWith("[") ? `[${n}]` : n)));
  return (header) => {
    if (typeof header !== "string") return false;
    const name = hostName(header);
    return name !== null && name !== "" && (isLoopbackName(name) || names.has(name));
  };
}
