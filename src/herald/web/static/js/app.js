// The page: sign-in, the header (unread badge, live state, theme, user), routing between the
// inbox and the settings, and the live part: signals, toasts, desktop notifications, and a
// 30-second /status poll whenever signals are not connected.

import { HeraldClient, NotificationsClient } from './api.js';
import { Session } from './auth.js';
import { Inbox } from './inbox.js';
import { applyTheme, desktopEnabled, effectiveTheme, getPref, setPref } from './prefs.js';
import { SettingsView } from './settings.js';
import { SignalClient } from './signals.js';
import { SEVERITIES, h, icon, replace, safeLink, toast, truncate } from './ui.js';

// Debugging knobs (localStorage): herald.pollSeconds, herald.signals = 'off'.
const POLL_MS = (Number(getPref('pollSeconds')) || 30) * 1000;
const SIGNALS_ON = getPref('signals') !== 'off';
const MAX_ANNOUNCED = 3;
const GROUP_AFTER = 3; // more visible arrival notices than this become one summary

const $ = (id) => document.getElementById(id);

class App {
  constructor() {
    this.herald = new HeraldClient();
    this.session = null;
    this.api = null;
    this.signals = null;
    this.inbox = null;
    this.settings = null;
    this.tab = 'inbox';
    this.lastStatus = null;
    this.lastCheck = new Date();
    this.pollTimer = null;
    this.announced = new Map(); // notification id -> dismiss() of its visible notice
    this.summary = null; // {count, severity, dismiss} of the visible summary notice
    this.views = { signin: $('signin-view'), inbox: $('inbox-view'), settings: $('settings-view') };
  }

  async boot() {
    applyTheme();
    this.wireHeader();
    let info;
    try {
      info = await this.herald.info();
    } catch (error) {
      this.showFatal('Herald is not reachable', error.message);
      return;
    }
    this.info = info;
    this.session = new Session(this.herald, info);
    this.session.addEventListener('expired', () => this.stop('Your session has ended. Please sign in again.'));
    this.session.addEventListener('signedout', () => this.stop());
    this.session.addEventListener('change', () => this.renderUser());
    let ok = false;
    try {
      ok = await this.session.restore();
    } catch (error) {
      this.showFatal('Herald is not reachable', error.message);
      return;
    }
    if (ok) this.start();
    else this.showSignIn();
  }

  // -- header ---------------------------------------------------------------------------------

  wireHeader() {
    $('theme-toggle').addEventListener('click', () => {
      const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
      setPref('theme', next);
      applyTheme(next);
      this.renderThemeButton();
    });
    window.addEventListener('herald:pref', (e) => {
      if (e.detail.name === 'theme') this.renderThemeButton();
    });
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.renderThemeButton());
    this.renderThemeButton();
    $('sign-out').addEventListener('click', () => this.session?.signOut());
    for (const link of document.querySelectorAll('[data-nav]')) {
      link.addEventListener('click', (e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        this.go(link.dataset.nav);
      });
    }
    window.addEventListener('popstate', () => this.route());
    document.addEventListener('keydown', (e) => this.onKey(e));
    $('shortcuts-close').addEventListener('click', () => $('shortcuts').close());
    $('shortcuts-open').addEventListener('click', () => $('shortcuts').showModal());
  }

  renderThemeButton() {
    const dark = effectiveTheme() === 'dark';
    const button = $('theme-toggle');
    replace(button, icon(dark ? 'sun' : 'moon'));
    button.setAttribute('aria-label', dark ? 'Switch to light theme' : 'Switch to dark theme');
    button.title = button.getAttribute('aria-label');
  }

  renderUser() {
    const s = this.session;
    $('user').hidden = !s?.signedIn;
    if (!s?.signedIn) return;
    const name = s.displayName || s.user.replace(/^user:default\//, '');
    $('user-name').textContent = name;
    $('user-name').title = s.user;
    $('sign-out').title = `Signed in as ${name} (${s.user})`;
    $('sign-out').hidden = !s.canSignOut;
  }

  renderLive() {
    const el = $('live-status');
    const socket = this.signals?.state;
    let state = 'polling';
    let text = 'Not live';
    if (socket === 'open') {
      state = 'live';
      text = 'Live';
    } else if (socket === 'connecting' && !this.wasLive) {
      state = 'connecting';
      text = 'Connecting…';
    } else if (this.wasLive) {
      text = 'Reconnecting…';
    }
    el.dataset.state = state;
    el.querySelector('.live-text').textContent = text;
    const seconds = Math.round(POLL_MS / 1000);
    el.title = state === 'live'
      ? 'Live: new notifications appear as they arrive'
      : `Live updates are unavailable: checking for news every ${seconds} s${this.signals ? ' and reconnecting' : ''}`;
  }

  /** The unread badge and the "(N) " title prefix. */
  setStatus(status) {
    const previous = this.lastStatus;
    this.lastStatus = status;
    const badge = $('unread-badge');
    badge.textContent = status.unread > 99 ? '99+' : String(status.unread);
    badge.hidden = status.unread === 0;
    badge.setAttribute('aria-label', `${status.unread} unread`);
    this.renderTitle();
    return previous;
  }

  renderTitle() {
    const unread = this.lastStatus?.unread || 0;
    const page = this.tab === 'settings' ? 'Settings' : this.tab === 'signin' ? 'Sign in' : 'Inbox';
    document.title = `${unread ? `(${unread}) ` : ''}${page} · Herald`;
  }

  // -- sign-in --------------------------------------------------------------------------------

  async showSignIn(message = '') {
    this.show('signin');
    this.renderUser();
    const root = this.views.signin;
    const info = this.info;
    const error = h('p', { class: 'banner error', role: 'alert', hidden: !message }, message);
    const fail = (text) => {
      error.textContent = text;
      error.hidden = false;
    };
    const tokenInput = h('input', {
      type: 'password', id: 'token-input', class: 'input', autocomplete: 'off', spellcheck: false,
      placeholder: 'eyJ…', 'aria-describedby': 'token-help',
    });
    const tokenForm = h('form', { class: 'token-form' },
      h('label', { for: 'token-input', class: 'field-label' }, 'User token'),
      h('div', { class: 'row' }, tokenInput, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in')),
      h('p', { id: 'token-help', class: 'muted small' },
        'A Backstage user token, or one from ', h('code', {}, 'herald token user:default/you'),
        '. It is kept in this tab only.'));
    tokenForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        if (await this.session.signInWithToken(tokenInput.value)) this.start();
        else fail('That token was not accepted.');
      } catch (err) {
        fail(`Sign-in failed: ${err.message}`);
      }
    });

    const card = h('section', { class: 'card signin-card', 'aria-labelledby': 'signin-title' },
      h('div', { class: 'signin-brand' }, icon('bell', 'brand-icon big')),
      h('h1', { id: 'signin-title' }, 'Sign in to Herald'), error);
    if (info.dev) {
      const list = h('ul', { class: 'user-list', 'aria-label': 'Demo users' });
      card.append(h('p', { class: 'muted' },
        'Demo mode: pick a person from the catalog to see their inbox. ',
        'This sign-in works only from this machine.'), list);
      try {
        const users = await this.herald.devUsers();
        if (!users.length) list.append(h('li', { class: 'muted' }, 'The catalog has no users.'));
        for (const u of users) {
          const name = u.displayName || u.ref.replace(/^user:[^/]+\//, '');
          list.append(h('li', {}, h('button', {
            type: 'button', class: 'user-pick', dataset: { ref: u.ref },
            onclick: async () => {
              try {
                if (await this.session.signInDev(u.ref)) this.start();
                else fail(`Could not sign in as ${name}.`);
              } catch (err) {
                fail(`Could not sign in as ${name}: ${err.message}`);
              }
            },
          }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, name.slice(0, 1).toUpperCase()),
          h('span', { class: 'user-text' }, h('strong', {}, name), h('span', { class: 'muted' }, u.email || u.ref)))));
        }
      } catch (err) {
        fail(`Could not list the users: ${err.message}`);
      }
      card.append(h('details', { class: 'token-details' }, h('summary', {}, 'Use a token instead'), tokenForm));
    } else {
      card.append(h('p', { class: 'muted' },
        'No session was found. Behind your organisation\'s sign-in proxy this page signs you in by ',
        'itself; otherwise paste a user token.'), tokenForm);
    }
    replace(root, card);
    (root.querySelector('.user-pick') || tokenInput).focus();
  }

  showFatal(title, detail) {
    this.show('signin');
    replace(this.views.signin, h('section', { class: 'card signin-card', role: 'alert' },
      h('h1', {}, title), h('p', { class: 'muted' }, detail || ''),
      h('button', { type: 'button', class: 'btn btn-primary', onclick: () => window.location.reload() }, 'Try again')));
  }

  // -- signed in ------------------------------------------------------------------------------

  start() {
    this.renderUser();
    this.api = new NotificationsClient({
      getToken: () => this.session.token,
      onUnauthorized: () => this.session.renew().catch(() => false),
    });
    this.inbox = new Inbox(this.views.inbox, {
      api: this.api,
      appBaseUrl: this.info.appBaseUrl,
      onStatus: (status) => this.onStatus(status),
      onNavigate: () => this.renderTitle(),
    });
    this.settings = new SettingsView(this.views.settings, { api: this.api });
    this.wasLive = false;
    if (SIGNALS_ON) {
      const signals = new SignalClient({ getToken: () => this.session.token });
      this.signals = signals;
      signals.addEventListener('statechange', () => {
        if (signals !== this.signals) return;
        if (signals.state === 'open') this.wasLive = true;
        this.renderLive();
      });
      // Anything may have happened while the socket was closed (or before it opened): catch up.
      signals.addEventListener('open', () => signals === this.signals && this.catchUp());
      signals.subscribe('notifications', (message) => this.onSignal(message));
    }
    this.renderLive();
    this.pollTimer = setInterval(() => this.poll(), POLL_MS);
    this.onVisible = () => {
      if (!document.hidden) this.poll();
    };
    document.addEventListener('visibilitychange', this.onVisible);
    this.route();
  }

  stop(message = '') {
    this.inbox?.dispose();
    this.inbox = null;
    const signals = this.signals;
    this.signals = null;
    signals?.close();
    clearInterval(this.pollTimer);
    if (this.onVisible) document.removeEventListener('visibilitychange', this.onVisible);
    this.lastStatus = null;
    $('unread-badge').hidden = true;
    this.showSignIn(message);
  }

  show(tab) {
    this.tab = tab;
    for (const [name, el] of Object.entries(this.views)) el.hidden = name !== tab;
    for (const id of ['nav', 'live-status', 'shortcuts-open']) $(id).hidden = tab === 'signin';
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (link.dataset.nav === tab) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    this.renderTitle();
  }

  go(tab) {
    if (!this.inbox) return;
    if (tab === 'settings') window.history.pushState(null, '', '/?tab=settings');
    else {
      window.history.pushState(null, '', '/');
      this.inbox.writeUrl();
    }
    this.route();
    $('main').focus({ preventScroll: true });
  }

  route() {
    if (!this.inbox) return;
    const params = new URLSearchParams(window.location.search);
    if (params.get('tab') === 'settings') {
      this.show('settings');
      this.settings.load();
      this.refreshStatus();
    } else {
      this.show('inbox');
      this.inbox.readUrl(params);
      this.inbox.load();
    }
  }

  // -- live -----------------------------------------------------------------------------------

  onStatus(status) {
    this.setStatus(status);
  }

  async refreshStatus() {
    try {
      this.setStatus(await this.api.getStatus());
    } catch {
      // shown on the next successful load
    }
  }

  /** Any notifications signal: re-read what is shown (throttled); announce new ones. */
  onSignal(message) {
    if (!message || typeof message.action !== 'string') return;
    this.lastCheck = new Date();
    if (this.tab === 'inbox') this.inbox.refresh();
    else this.refreshStatus();
    if (message.action === 'new_notification' && message.notification_id) {
      this.announceId(message.notification_id);
    }
  }

  catchUp() {
    if (this.tab === 'inbox') this.inbox.load();
    else this.refreshStatus();
  }

  /** While signals are down: check /status; on a change, reload and announce what is new. */
  async poll() {
    if (!this.api || document.hidden || this.signals?.state === 'open') return;
    const since = this.lastCheck;
    let status;
    try {
      status = await this.api.getStatus();
    } catch {
      return;
    }
    this.lastCheck = new Date();
    const previous = this.setStatus(status);
    if (!previous || (previous.unread === status.unread && previous.read === status.read)) return;
    if (this.tab === 'inbox') this.inbox.load();
    if (status.unread > previous.unread) {
      try {
        const fresh = await this.api.getNotifications({
          read: false, createdAfter: since, limit: MAX_ANNOUNCED, sort: 'created', sortOrder: 'desc',
        });
        for (const n of fresh.notifications.reverse()) this.announce(n);
      } catch {
        // the list shows them anyway
      }
    }
  }

  async announceId(id) {
    try {
      this.announce(await this.api.getNotification(id));
    } catch {
      // gone already, or not ours
    }
  }

  /** A toast and, when allowed, a desktop notification (tagged with the id: one per tab set). */
  announce(n) {
    if (n.read) return;
    const p = n.payload || {};
    const severity = SEVERITIES.includes(p.severity) ? p.severity : 'normal';
    const link = safeLink(p.link, this.info.appBaseUrl);
    const open = () => {
      if (link) {
        window.open(link, '_blank', 'noopener,noreferrer');
        this.api.updateNotifications({ ids: [n.id], read: true }).then(() => this.catchUp(), () => {});
      } else {
        if (this.tab !== 'inbox') this.go('inbox');
        this.inbox.showDetail(n.id);
      }
    };
    if (getPref('toasts') === 'on' && !this.announced.has(n.id)) {
      if (this.summary || this.announced.size >= GROUP_AFTER) {
        this.announceSummary(severity);
      } else {
        this.announced.set(n.id, toast({
          title: truncate(p.title || 'New notification', 50),
          body: p.description ? truncate(p.description, 140) : '',
          severity,
          actions: [
            { label: link ? 'Open' : 'View', onClick: open },
            { label: 'Mark read', onClick: () => this.api.updateNotifications({ ids: [n.id], read: true })
              .then(() => this.catchUp(), () => {}) },
          ],
          onClose: () => this.announced.delete(n.id),
        }));
      }
    }
    if (desktopEnabled()) {
      try {
        const note = new Notification(p.title || 'New notification', {
          body: p.description || '', tag: n.id, icon: '/static/favicon.svg',
        });
        note.addEventListener('click', () => {
          window.focus();
          open();
          note.close();
        });
      } catch {
        // some browsers only allow notifications from a service worker
      }
    }
  }

  /** A burst of arrivals becomes one notice ("5 new notifications") instead of a wall of them. */
  announceSummary(severity) {
    const count = (this.summary?.count || this.announced.size) + 1;
    const ranks = [this.summary?.severity, severity].filter(Boolean).map((sv) => SEVERITIES.indexOf(sv));
    const worst = SEVERITIES[Math.min(...ranks)];
    for (const dismiss of [...this.announced.values()]) dismiss();
    this.announced.clear();
    const previous = this.summary;
    this.summary = { count, severity: worst };
    previous?.dismiss();
    const summary = this.summary;
    summary.dismiss = toast({
      title: `${count} new notifications`,
      body: 'They are in your inbox.',
      severity: worst,
      actions: [{ label: 'Show', onClick: () => this.showUnread() }],
      onClose: () => {
        if (this.summary === summary) this.summary = null;
      },
    });
  }

  showUnread() {
    if (this.tab !== 'inbox') this.go('inbox');
    this.inbox.update({ view: 'unread', page: 1 });
  }

  // -- keyboard -------------------------------------------------------------------------------

  onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    const target = e.target;
    const typing = target.closest?.('input, textarea, select, [contenteditable="true"]')
      && !(target.type === 'checkbox' || target.type === 'radio');
    if (typing) return;
    if (e.key === '?') {
      $('shortcuts').showModal();
      e.preventDefault();
      return;
    }
    if (!this.inbox || $('shortcuts').open) return;
    if (e.key === 'g') {
      this.pendingG = Date.now();
      return;
    }
    if (this.pendingG && Date.now() - this.pendingG < 1500 && (e.key === 'i' || e.key === 's')) {
      this.pendingG = 0;
      this.go(e.key === 'i' ? 'inbox' : 'settings');
      e.preventDefault();
      return;
    }
    if (this.tab === 'inbox' && this.inbox.handleKey(e)) e.preventDefault();
  }
}

new App().boot();
