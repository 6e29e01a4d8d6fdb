// Phoenix channel messages as Supabase Realtime speaks them: vsn 1.0.0 is a JSON object per frame, vsn 2.0.0 (what
// realtime-js sends by default) a JSON array [join_ref, ref, topic, event, payload]. 2.0.0 also has binary frames
// for user broadcasts, which this server does not serve (postgres_changes only).

export const VERSIONS = new Set(["1.0.0", "2.0.0"]);

/**
 * @typedef {{joinRef: string|null, ref: string|null, topic: string, event: string, payload: Record<string, any>}} Message
 */

/**
 * One text frame to a message, or null when it is not one.
 * @param {string} vsn
 * @param {string} text
 * @returns {Message|null}
 */
export function decode(vsn, text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  let msg;
  if (vsn === "2.0.0") {
    if (!Array.isArray(m) || m.length !== 5) return null;
    const [joinRef, ref, topic, event, payload] = m;
    msg = { joinRef, ref, topic, event, payload };
  } else {
    if (m === null || typeof m !== "object" || Array.isArray(m)) return null;
    msg = { joinRef: m.join_ref ?? null, ref: m.ref ?? null, topic: m.topic, event: m.event, payload: m.payload };
  }
  const refOk = (r) => r === null || r === undefined || typeof r === "string";
  if (typeof msg.topic !== "string" || typeof msg.event !== "string" || !refOk(msg.ref) || !refOk(msg.joinRef)) return null;
  if (msg.payload === null || typeof msg.payload !== "object" || Array.isArray(msg.payload)) return null;
  msg.ref ??= null;
  msg.joinRef ??= null;
  return msg;
}

/**
 * @param {string} vsn
 * @param {Message} m
 */
export function encode(vsn, { joinRef, ref, topic, event, payload }) {
  if (vsn === "2.0.0") return JSON.stringify([joinRef, ref, topic, event, payload]);
  return JSON.stringify({ topic, event, payload, ref, join_ref: joinRef });
}
