// HTTP clients: the Backstage notifications API (the exact calls of Backstage's
// NotificationsClient, spec §8.2) and Herald's own /api/herald endpoints.
// The bearer token goes in the Authorization header only: never in a URL, never in a log line.

/** A non-2xx answer; `name` and `message` come from Backstage's error body when there is one. */
export class ResponseError extends Error {
  constructor(status, body) {
    const error = body && typeof body === 'object' ? body.error : null;
    super(error?.message || `Request failed with status ${status}`);
    this.name = error?.name || 'ResponseError';
    this.status = status;
  }
}

async function parse(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * `getToken()` returns the current user token (or null: a trusted proxy authenticates the request);
 * `onUnauthorized()` is awaited on a 401 and may return true after renewing the session, in which
 * case the request is tried once more.
 */
export class NotificationsClient {
  constructor({ base = '/api/notifications', getToken = () => null, onUnauthorized = async () => false } = {}) {
    this.base = base;
    this.getToken = getToken;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, { body, keepalive = false, retry = true } = {}) {
    const headers = { Accept: 'application/json' };
    const token = this.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`${this.base}${path}`, {
      method, headers, keepalive, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && retry && (await this.onUnauthorized())) {
      return this.request(method, path, { body, keepalive, retry: false });
    }
    const data = await parse(response);
    if (!response.ok) throw new ResponseError(response.status, data);
    return data;
  }

  /** GET /notifications?… with the query built in Backstage's order (spec §8.2). */
  getNotifications(opts = {}) {
    const qs = new URLSearchParams();
    if (opts.limit !== undefined) qs.append('limit', String(opts.limit));
    if (opts.offset !== undefined) qs.append('offset', String(opts.offset));
    if (opts.sort) qs.append('orderField', `${opts.sort},${opts.sortOrder ?? 'desc'}`);
    appendFilters(qs, opts);
    if (opts.topic) qs.append('topic', opts.topic);
    return this.request('GET', `/notifications?${qs}`);
  }

  getNotification(id) {
    return this.request('GET', `/notifications/${encodeURIComponent(id)}`);
  }

  getStatus() {
    return this.request('GET', '/status');
  }

  /** POST /notifications/update {ids, read?, saved?}; `keepalive` survives leaving the page. */
  updateNotifications({ ids, read, saved }, { keepalive = false } = {}) {
    const body = { ids };
    if (read !== undefined) body.read = read;
    if (saved !== undefined) body.saved = saved;
    return this.request('POST', '/notifications/update', { body, keepalive });
  }

  getSettings() {
    return this.request('GET', '/settings');
  }

  updateSettings(settings) {
    return this.request('POST', '/settings', { body: settings });
  }

  /** GET /topics?… (only search, read, saved, createdAfter, minimumSeverity). */
  getTopics(opts = {}) {
    const qs = new URLSearchParams();
    appendFilters(qs, opts);
    return this.request('GET', `/topics?${qs}`);
  }
}

function appendFilters(qs, opts) {
  if (opts.search) qs.append('search', opts.search);
  if (opts.read !== undefined) qs.append('read', String(opts.read));
  if (opts.saved !== undefined) qs.append('saved', String(opts.saved));
  if (opts.createdAfter) qs.append('createdAfter', opts.createdAfter.toISOString());
  if (opts.minimumSeverity) qs.append('minimumSeverity', opts.minimumSeverity);
}

/** Herald's own endpoints: server info, dev sign-in, the browser session. */
export class HeraldClient {
  constructor(base = '/api/herald') {
    this.base = base;
  }

  async call(method, path, { body, token } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`${this.base}${path}`, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await parse(response);
    if (!response.ok) throw new ResponseError(response.status, data);
    return data;
  }

  /** {dev, session, appBaseUrl}; an older server answers {dev} only. */
  info() {
    return this.call('GET', '/info');
  }

  /** Catalog users for the demo picker (dev mode and loopback only; otherwise an empty list). */
  async devUsers() {
    const data = await this.call('GET', '/dev/users');
    return data?.users ?? [];
  }

  async devToken(user) {
    const data = await this.call('POST', '/dev/token', { body: { user } });
    return data.token;
  }

  /** Exchange a credential (or a trusted proxy's header, when `credential` is null) for a
   * short-lived session token: {token, user, displayName, expiresAt, expiresInSeconds, via}. */
  session(credential) {
    return this.call('POST', '/session', { body: {}, token: credential });
  }
}
