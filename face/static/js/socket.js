// The face's WebSocket: connects, reconnects by itself with capped, jittered exponential backoff,
// and hands every text message to the page. It knows nothing of what the messages mean.

const RECONNECT_MIN_MS = 250, RECONNECT_MAX_MS = 4000, RECONNECT_JITTER = 0.3;

// handlers: onStatus("connecting" | "open" | "closed", attempts so far), onText(text), onBinary().
// Returns { send(text) }: a message for the server while the socket is open, else dropped (the
// page only sends what is worth its newest value). The page's own ?token= goes along, so a page
// opened with the access token may tell the server things (the gaze) that a viewer may not.
export function connectFace(path, { onStatus, onText, onBinary }) {
  let attempts = 0;
  let ws = null;
  const token = new URLSearchParams(location.search).get("token");
  const url = token ? `${path}?token=${encodeURIComponent(token)}` : path;
  let backoff = RECONNECT_MIN_MS;
  const retry = () => {
    const wait = backoff * (1 + Math.random() * RECONNECT_JITTER);
    backoff = Math.min(RECONNECT_MAX_MS, backoff * 2);
    setTimeout(connect, wait);
  };
  const connect = () => {
    attempts++;
    onStatus("connecting", attempts);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    try { ws = new WebSocket(`${scheme}://${location.host}${url}`); } catch { retry(); return; }
    ws.onopen = () => {
      backoff = RECONNECT_MIN_MS;
      onStatus("open", attempts);
    };
    ws.onmessage = (ev) => { if (typeof ev.data === "string") onText(ev.data); else onBinary(); };
    ws.onclose = () => {
      onStatus("closed", attempts);
      retry();
    };
    ws.onerror = () => { /* onclose follows */ };
  };
  connect();
  return { send(text) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(text); } };
}
