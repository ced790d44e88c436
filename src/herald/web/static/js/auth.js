// Who is signed in, and the token the page uses.
//
// The credential a person signs in with (the demo picker's dev token, or a pasted user token) is
// kept in sessionStorage: it lives as long as the tab and never goes into a URL or a log. It is
// exchanged at POST /api/herald/session for a short-lived session token, held in memory only and
// renewed before it runs out. Behind a trusted reverse proxy nothing is stored at all: the proxy's
// user header authenticates the exchange.

const CREDENTIAL_KEY = 'herald.credential';
const LAST_USER_KEY = 'herald.lastUser';
const RETRY_MS = 30_000;

function readStorage(key) {
  try {
    return window.sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeStorage(key, value) {
  try {
    if (value === null) window.sessionStorage.removeItem(key);
    else window.sessionStorage.setItem(key, value);
  } catch {
    // Storage disabled: the session lasts as long as the page.
  }
}

/** The `sub` of a JWT, for display only (the server verifies tokens, the page never needs to). */
function subjectOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part)).sub || null;
  } catch {
    return null;
  }
}

export class Session extends EventTarget {
  /** `herald` is a HeraldClient, `info` the answer of GET /api/herald/info. */
  constructor(herald, info) {
    super();
    this.herald = herald;
    this.info = info;
    this.token = null;
    this.user = null;
    this.displayName = null;
    this.via = null;
    this._credential = readStorage(CREDENTIAL_KEY);
    this._renewTimer = null;
    this._renewing = null;
  }

  get signedIn() {
    return this.user !== null;
  }

  /** Proxy sessions cannot be ended from the page; the others can. */
  get canSignOut() {
    return this.via !== 'proxy';
  }

  get lastUser() {
    return readStorage(LAST_USER_KEY);
  }

  /** Resume the tab's session, or pick up a trusted proxy's; false when the person must sign in. */
  async restore() {
    if (this._credential && (await this._exchange(this._credential))) return true;
    if (this._credential) this._forget();
    if (this.info.session && this.info.proxy && (await this._exchange(null))) return true;
    if (this.info.dev && this.lastUser) {
      try {
        return await this.signInDev(this.lastUser);
      } catch {
        writeStorage(LAST_USER_KEY, null);
      }
    }
    return false;
  }

  /** Demo sign-in as a catalog user (dev mode, loopback only). */
  async signInDev(userRef) {
    const credential = await this.herald.devToken(userRef);
    const ok = await this.signInWithToken(credential);
    if (ok) writeStorage(LAST_USER_KEY, userRef);
    return ok;
  }

  /** Sign in with a user token the person already has. */
  async signInWithToken(credential) {
    const token = credential.trim();
    if (!token || !(await this._exchange(token))) return false;
    this._credential = token;
    writeStorage(CREDENTIAL_KEY, token);
    return true;
  }

  signOut() {
    this._forget();
    writeStorage(LAST_USER_KEY, null);
    this.dispatchEvent(new Event('signedout'));
  }

  /** Get a fresh session token; false (and a 'expired' event) when the credential is no longer good. */
  renew() {
    if (!this._renewing) {
      this._renewing = this._exchange(this._credential).then((ok) => {
        this._renewing = null;
        if (!ok) {
          this._forget();
          this.dispatchEvent(new Event('expired'));
        }
        return ok;
      });
    }
    return this._renewing;
  }

  async _exchange(credential) {
    if (!this.info.session) {
      // An older server without sessions: use the credential as it is.
      if (!credential) return false;
      this._apply({ token: credential, user: subjectOf(credential), displayName: null, via: 'bearer' });
      return this.user !== null;
    }
    let answer;
    try {
      answer = await this.herald.session(credential);
    } catch (error) {
      if (error.status === 401 || error.status === 403) return false;
      if (error.status === undefined && credential) {
        // The server is unreachable: keep the credential, try again shortly.
        this._schedule(RETRY_MS);
      }
      throw error;
    }
    this._apply(answer);
    const lifetime = Math.max(answer.expiresInSeconds || 0, 60) * 1000;
    this._schedule(lifetime * 0.75);
    return true;
  }

  _apply({ token, user, displayName, via }) {
    this.token = token;
    this.user = user;
    this.displayName = displayName || null;
    this.via = via || 'bearer';
    this.dispatchEvent(new Event('change'));
  }

  _schedule(ms) {
    clearTimeout(this._renewTimer);
    this._renewTimer = setTimeout(() => {
      this.renew().catch(() => this._schedule(RETRY_MS));
    }, ms);
  }

  _forget() {
    clearTimeout(this._renewTimer);
    this._credential = null;
    writeStorage(CREDENTIAL_KEY, null);
    this.token = null;
    this.user = null;
    this.displayName = null;
    this.via = null;
  }
}
