// The signals client: Backstage's WebSocket protocol at /api/signals (spec §4.3).
//
// The user token travels as the WebSocket subprotocol (browsers cannot set headers on a
// WebSocket); frames are {"action":"subscribe","channel":…} out and {"channel":…,"message":…} in.
// One socket per page, opened on the first subscription, re-opened by itself after any close
// that was not asked for (1 s, then backing off to 30 s, sooner when the browser comes back
// online or the tab becomes visible), re-subscribing every channel.
//
// Events: 'statechange' (this.state is 'idle' | 'connecting' | 'open' | 'closed') and 'open'
// (every time a socket opens: anything may have happened while it was closed).

const CONNECT_TIMEOUT_MS = 10_000;
const BACKOFF_MS = [1_000, 5_000, 10_000, 20_000, 30_000];

export function signalsUrl(path = '/api/signals') {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  return url.href;
}

export class SignalClient extends EventTarget {
  constructor({ url = signalsUrl(), getToken = () => null } = {}) {
    super();
    this.url = url;
    this.getToken = getToken;
    this.state = 'idle';
    this._socket = null;
    this._callbacks = new Map(); // channel -> Set(callback)
    this._attempt = 0;
    this._retryTimer = null;
    this._connectTimer = null;
    this._stopped = false;
    this._wake = () => {
      if (this.state === 'closed' && !document.hidden && navigator.onLine !== false) this.reconnectNow();
    };
    window.addEventListener('online', this._wake);
    document.addEventListener('visibilitychange', this._wake);
  }

  /** Call `callback(message)` for every message on `channel`; returns the unsubscribe function. */
  subscribe(channel, callback) {
    let set = this._callbacks.get(channel);
    if (!set) {
      set = new Set();
      this._callbacks.set(channel, set);
      this._send({ action: 'subscribe', channel });
    }
    set.add(callback);
    if (!this._socket && !this._retryTimer) this._connect();
    return () => {
      set.delete(callback);
      if (set.size === 0) {
        this._callbacks.delete(channel);
        this._send({ action: 'unsubscribe', channel });
      }
      if (this._callbacks.size === 0) this.close();
    };
  }

  /** Drop the socket and connect again at once (e.g. with a new token). */
  reconnectNow() {
    if (this._stopped || this._callbacks.size === 0) return;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._attempt = 0;
    this._teardown();
    this._connect();
  }

  /** Close for good (sign-out). */
  close() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._teardown(1000);
    this._setState('idle');
    window.removeEventListener('online', this._wake);
    document.removeEventListener('visibilitychange', this._wake);
  }

  _connect() {
    if (this._stopped) return;
    this._setState('connecting');
    const token = this.getToken();
    let socket;
    try {
      socket = token ? new WebSocket(this.url, token) : new WebSocket(this.url);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    this._connectTimer = setTimeout(() => {
      if (socket.readyState !== WebSocket.OPEN) {
        this._teardown();
        this._scheduleReconnect();
      }
    }, CONNECT_TIMEOUT_MS);
    socket.addEventListener('open', () => {
      clearTimeout(this._connectTimer);
      this._attempt = 0;
      for (const channel of this._callbacks.keys()) {
        socket.send(JSON.stringify({ action: 'subscribe', channel }));
      }
      this._setState('open');
      this.dispatchEvent(new Event('open'));
    });
    socket.addEventListener('message', (event) => this._receive(event.data));
    socket.addEventListener('close', (event) => {
      if (this._socket !== socket) return;
      clearTimeout(this._connectTimer);
      this._socket = null;
      if (event.code === 1000 && this._stopped) return;
      this._scheduleReconnect();
    });
    // 'error' is always followed by 'close'.
  }

  _receive(data) {
    if (typeof data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame.channel !== 'string') return;
    const callbacks = this._callbacks.get(frame.channel);
    if (!callbacks) return;
    for (const callback of [...callbacks]) {
      try {
        callback(frame.message);
      } catch (error) {
        console.error('signal handler failed', error);
      }
    }
  }

  _send(frame) {
    if (this._socket && this._socket.readyState === WebSocket.OPEN) {
      this._socket.send(JSON.stringify(frame));
    }
    // Otherwise every channel is (re-)subscribed when the socket opens.
  }

  _scheduleReconnect() {
    if (this._stopped) return;
    this._setState('closed');
    const base = BACKOFF_MS[Math.min(this._attempt, BACKOFF_MS.length - 1)];
    this._attempt += 1;
    const delay = base * (0.8 + Math.random() * 0.4);
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._connect();
    }, delay);
  }

  _teardown(code = 1000) {
    clearTimeout(this._connectTimer);
    const socket = this._socket;
    this._socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) {
      try {
        socket.close(code);
      } catch {
        // already closing
      }
    }
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new Event('statechange'));
  }
}
