// WebSocket client for the live topics: subscribes, re-subscribes after a reconnect (with
// exponential backoff and jitter), keeps the connection alive with pings, and dispatches each
// message to the handlers of its topic. States: connecting, live, reconnecting, offline.

const MAX_BACKOFF_MS = 15_000;
const PING_MS = 5 * 60_000; // API Gateway closes idle sockets after 10 minutes

export class LiveClient {
  constructor(url, tokenProvider) {
    this.url = url;
    this.tokenProvider = tokenProvider;
    this.handlers = new Map(); // topic -> Set(handler)
    this.stateListeners = new Set();
    this.errorListeners = new Set();
    this.state = "offline";
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.pinger = null;
    this.closed = false;
  }

  onState(listener) {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  /** Hear the server's `error` replies (a refused subscription, a snapshot it could not read). */
  onError(listener) {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  _setState(state) {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  /** Listen to `topic`; returns the function that stops listening (and unsubscribes). */
  subscribe(topic, handler) {
    let set = this.handlers.get(topic);
    const fresh = !set;
    if (fresh) {
      set = new Set();
      this.handlers.set(topic, set);
    }
    set.add(handler);
    if (fresh) this._send({ action: "subscribe", topics: [topic] });
    return () => {
      set.delete(handler);
      if (set.size === 0 && this.handlers.get(topic) === set) {
        this.handlers.delete(topic);
        this._send({ action: "unsubscribe", topics: [topic] });
      }
    };
  }

  start() {
    if (!this.url) return;
    this.closed = false;
    this._connect();
  }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.socket) this.socket.close();
    this._setState("offline");
  }

  _send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  async _connect() {
    this._setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let token;
    try {
      token = await this.tokenProvider();
    } catch {
      this._retry();
      return;
    }
    const url = new URL(this.url);
    url.searchParams.set("token", token);
    const socket = new WebSocket(url.toString());
    this.socket = socket;
    socket.addEventListener("open", () => {
      performance.mark("live-open");
      this.attempt = 0;
      this._setState("live");
      // The server sends a fresh snapshot per topic: handlers replace what they hold with it.
      const topics = [...this.handlers.keys()];
      if (topics.length) this._send({ action: "subscribe", topics });
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this._send({ action: "ping" }), PING_MS);
    });
    socket.addEventListener("message", (event) => this._dispatch(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      clearInterval(this.pinger);
      this.socket = null;
      if (!this.closed) this._retry();
    });
  }

  _retry() {
    this.attempt += 1;
    this._setState("reconnecting");
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.attempt - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), delay);
  }

  _dispatch(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (message.type === "pong") return;
    if (message.type === "error") {
      console.warn("live:", message.data && message.data.message);
      for (const listener of [...this.errorListeners]) listener(message);
      return;
    }
    const set = this.handlers.get(message.topic);
    if (!set) return;
    for (const handler of [...set]) handler(message);
  }
}
