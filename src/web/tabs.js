// The channel between live tabs of one user's queue (src/web/tabs.rs). Null where there is no BroadcastChannel:
// each tab then goes alone.
export function channel(name, onMessage) {
  if (typeof BroadcastChannel === "undefined") return null;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event) => onMessage(event.data);
  return channel;
}
