// The face's WebSocket: connects, reconnects by itself with capped, jittered exponential backoff,
// and hands every text message to the page. It knows nothing of what the messages mean.

const RECONNECT_MIN_MS = 250, RECONNECT_MAX_MS = 4000, RECONNECT_JITTER = 0.3;

// handlers: onStatus("connecting" | "open" | "closed", attempts so far), onText(text), onBinary()
export function connectFace(path, { onStatus, onText, onBinary }) {
  let attempts = 0;
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
    let ws;
    try { ws = new WebSocket(`${scheme}://${location.host}${path}`); } catch { retry(); return; }
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
}
