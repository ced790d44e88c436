// The inbox view: views, filters, sorting, pagination, selection and bulk actions, the
// deep-linked notification (/?id=…), keyboard shortcuts. Its state lives in the URL's query, so
// a reload or a shared link shows the same page.

import {
  SEVERITIES, SEVERITY_LABELS, absoluteTime, debounce, h, icon, refreshTimes, relativeTime, replace,
  safeLink, throttle, timeEl, toast,
} from './ui.js';
import { getPref, setPref } from './prefs.js';

const VIEWS = [
  { id: 'unread', label: 'Unread', query: { read: false } },
  { id: 'read', label: 'Read', query: { read: true } },
  { id: 'saved', label: 'Saved', query: { saved: true } },
  { id: 'all', label: 'All', query: {} },
];
const SORTS = {
  newest: { label: 'Newest first', sort: 'created', sortOrder: 'desc' },
  oldest: { label: 'Oldest first', sort: 'created', sortOrder: 'asc' },
  topic: { label: 'Topic', sort: 'topic', sortOrder: 'asc' },
  origin: { label: 'Sender', sort: 'origin', sortOrder: 'asc' },
};
const SEVERITY_FILTERS = [
  ['', 'Any severity'], ['critical', 'Critical only'], ['high', 'High and above'], ['normal', 'Normal and above'],
];
const SENT_FILTERS = [['', 'Any time'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'],
  ['date', 'Since a date…']];
const PAGE_SIZES = ['10', '25', '50', '100'];
const HOURS = { '24h': 24, '7d': 7 * 24, '30d': 30 * 24 };
const UPDATE_BATCH = 500;
const DEFAULTS = { view: 'unread', q: '', topic: '', severity: '', after: '', sort: 'newest', page: 1 };

function createdAfter(after) {
  if (!after) return undefined;
  if (HOURS[after]) return new Date(Date.now() - HOURS[after] * 3600 * 1000);
  const date = new Date(`${after}T00:00:00`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export class Inbox {
  /**
   * `api`: NotificationsClient; `appBaseUrl`: where relative links point; `onStatus(status)`:
   * called with every fresh {unread, read}; `onNavigate()`: the URL changed (title, tabs).
   */
  constructor(root, { api, appBaseUrl, onStatus, onNavigate }) {
    this.root = root;
    this.api = api;
    this.appBaseUrl = appBaseUrl;
    this.onStatus = onStatus;
    this.onNavigate = onNavigate;
    this.state = { ...DEFAULTS, size: Number(getPref('pageSize')) || 25 };
    this.detailId = null;
    this.items = [];
    this.total = 0;
    this.status = null;
    this.topics = [];
    this.selected = new Set();
    this.known = null; // ids shown so far (null before the first load: nothing is "new" then)
    this.seq = 0;
    this.refresh = throttle(() => this.load(), 2000);
    this.build();
    this.clock = setInterval(() => refreshTimes(this.root), 30_000);
  }

  dispose() {
    clearInterval(this.clock);
  }

  // -- URL state ------------------------------------------------------------------------------

  /** Read the state from the URL's query (on start and on back/forward). */
  readUrl(params = new URLSearchParams(window.location.search)) {
    const s = { ...DEFAULTS, size: this.state.size };
    const view = params.get('view');
    if (VIEWS.some((v) => v.id === view)) s.view = view;
    s.q = params.get('q') || '';
    s.topic = params.get('topic') || '';
    const severity = params.get('severity');
    if (SEVERITIES.includes(severity)) s.severity = severity;
    const after = params.get('after') || '';
    if (HOURS[after] || /^\d{4}-\d{2}-\d{2}$/.test(after)) s.after = after;
    if (SORTS[params.get('sort')]) s.sort = params.get('sort');
    s.page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
    const size = params.get('size');
    if (PAGE_SIZES.includes(size)) s.size = Number(size);
    this.state = s;
    this.detailId = params.get('id') || null;
    this.syncControls();
  }

  writeUrl({ push = false } = {}) {
    const params = new URLSearchParams();
    if (this.detailId) params.set('id', this.detailId);
    for (const key of ['view', 'q', 'topic', 'severity', 'after', 'sort', 'page']) {
      if (this.state[key] !== DEFAULTS[key]) params.set(key, String(this.state[key]));
    }
    if (this.state.size !== 25) params.set('size', String(this.state.size));
    const query = params.toString();
    const url = query ? `/?${query}` : '/';
    if (url !== `${window.location.pathname}${window.location.search}`) {
      window.history[push ? 'pushState' : 'replaceState'](null, '', url);
    }
    this.onNavigate?.();
  }

  /** Change filters: back to page 1, clear the selection, reload. */
  update(changes) {
    Object.assign(this.state, { page: 1 }, changes);
    this.selected.clear();
    this.writeUrl();
    this.syncControls();
    this.load();
  }

  // -- skeleton -------------------------------------------------------------------------------

  build() {
    const c = (this.controls = {});
    c.views = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Show' },
      VIEWS.map((v) => h('button', {
        type: 'button', class: 'seg', dataset: { view: v.id }, 'aria-pressed': 'false',
        onclick: () => this.update({ view: v.id }),
      }, h('span', {}, v.label), h('span', { class: 'count' }))));

    c.search = h('input', {
      type: 'search', id: 'search', class: 'input search', placeholder: 'Search title and description',
      'aria-label': 'Search notifications', autocomplete: 'off', spellcheck: false,
    });
    const search = debounce(() => this.update({ q: c.search.value.trim() }), 300);
    c.search.addEventListener('input', () => search());
    c.search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') search.flush();
      if (e.key === 'Escape') {
        if (c.search.value) {
          c.search.value = '';
          search.flush();
        } else {
          c.search.blur(); // back to the list shortcuts
        }
      }
    });

    c.topic = this.select('topic', 'Topic', [['', 'All topics']], (v) => this.update({ topic: v }));
    c.severity = this.select('severity', 'Severity', SEVERITY_FILTERS, (v) => this.update({ severity: v }));
    c.sent = this.select('sent', 'Sent', SENT_FILTERS, (v) => {
      if (v === 'date') {
        c.date.hidden = false;
        c.date.focus();
        if (c.date.value) this.update({ after: c.date.value });
      } else {
        this.update({ after: v });
      }
    });
    c.date = h('input', { type: 'date', class: 'input', 'aria-label': 'Sent on or after', hidden: true });
    c.date.addEventListener('change', () => c.date.value && this.update({ after: c.date.value }));
    c.sort = this.select('sort', 'Sort', Object.entries(SORTS).map(([k, v]) => [k, v.label]),
      (v) => this.update({ sort: v }));
    c.clear = h('button', { type: 'button', class: 'btn btn-link', onclick: () => this.clearFilters() },
      'Clear filters');

    c.selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all on this page' });
    c.selectAll.addEventListener('change', () => {
      if (c.selectAll.checked) for (const n of this.items) this.selected.add(n.id);
      else this.selected.clear();
      this.renderList();
    });
    c.selectionText = h('span', { class: 'selection-text', 'aria-live': 'polite' });
    const bulk = (label, iconName, change, long) => h('button', {
      type: 'button', class: 'btn btn-small', disabled: true, 'aria-label': long, title: long,
      onclick: () => this.apply([...this.selected], change),
    }, icon(iconName), h('span', {}, label));
    c.bulk = [
      bulk('Mark read', 'check', { read: true }, 'Mark selected as read'),
      bulk('Mark unread', 'envelope', { read: false }, 'Mark selected as unread'),
      bulk('Save', 'bookmark', { saved: true }, 'Save selected'),
      bulk('Unsave', 'bookmarkOutline', { saved: false }, 'Unsave selected'),
    ];
    c.markAll = h('button', {
      type: 'button', class: 'btn btn-small btn-primary', 'aria-label': 'Mark all as read', title: 'Mark all as read',
      onclick: () => this.markAllRead(),
    }, icon('checks'), h('span', {}, 'Mark all as read'));

    c.error = h('div', { class: 'banner error', role: 'alert', hidden: true });
    c.detail = h('section', { class: 'detail card', hidden: true, 'aria-labelledby': 'detail-title' });
    c.list = h('ul', { class: 'items', 'aria-label': 'Notifications' });
    c.empty = h('div', { class: 'empty', hidden: true });
    c.range = h('span', { class: 'range', 'aria-live': 'polite' });
    c.prev = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Previous page',
      onclick: () => this.goPage(this.state.page - 1) }, icon('left'));
    c.next = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Next page',
      onclick: () => this.goPage(this.state.page + 1) }, icon('right'));
    c.size = this.select('size', 'Per page', PAGE_SIZES.map((s) => [s, s]), (v) => {
      setPref('pageSize', v);
      this.update({ size: Number(v) });
    });

    replace(this.root,
      h('div', { class: 'inbox-head' },
        h('h1', { class: 'page-title' }, 'Inbox'),
        c.views),
      h('div', { class: 'filters', role: 'search' },
        h('div', { class: 'search-wrap' }, c.search),
        this.field('Topic', c.topic), this.field('Severity', c.severity),
        this.field('Sent', c.sent, c.date), this.field('Sort', c.sort), c.clear),
      c.error,
      c.detail,
      h('div', { class: 'card list-card' },
        h('div', { class: 'bulkbar', role: 'toolbar', 'aria-label': 'Selected notifications' },
          h('label', { class: 'check' }, c.selectAll), c.selectionText,
          h('div', { class: 'bulk-actions' }, c.bulk), h('div', { class: 'spacer' }), c.markAll),
        c.list, c.empty,
        h('div', { class: 'pager' }, this.field('Per page', c.size), c.range, c.prev, c.next)));
  }

  select(id, label, options, onChange) {
    const el = h('select', { class: 'input', id: `filter-${id}`, 'aria-label': label },
      options.map(([value, text]) => h('option', { value }, text)));
    el.addEventListener('change', () => onChange(el.value));
    return el;
  }

  field(label, ...controls) {
    return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), ...controls);
  }

  /** Make the controls show this.state. */
  syncControls() {
    const { state: s, controls: c } = this;
    for (const b of c.views.children) b.setAttribute('aria-pressed', String(b.dataset.view === s.view));
    if (document.activeElement !== c.search) c.search.value = s.q;
    this.fillTopics();
    c.severity.value = s.severity;
    const isDate = s.after && !HOURS[s.after];
    c.sent.value = isDate ? 'date' : s.after;
    c.date.hidden = !isDate && c.sent.value !== 'date';
    if (isDate) c.date.value = s.after;
    c.sort.value = s.sort;
    c.size.value = String(s.size);
    c.clear.hidden = !(s.q || s.topic || s.severity || s.after);
  }

  fillTopics() {
    const c = this.controls;
    const topics = [...this.topics];
    if (this.state.topic && !topics.includes(this.state.topic)) topics.unshift(this.state.topic);
    replace(c.topic, h('option', { value: '' }, 'All topics'), topics.map((t) => h('option', { value: t }, t)));
    c.topic.value = this.state.topic;
  }

  clearFilters() {
    this.controls.search.value = '';
    this.update({ q: '', topic: '', severity: '', after: '' });
  }

  goPage(page) {
    this.state.page = Math.max(1, page);
    this.selected.clear();
    this.writeUrl();
    this.load().then(() => this.controls.list.querySelector('.title')?.focus());
  }

  // -- loading --------------------------------------------------------------------------------

  query() {
    const s = this.state;
    const view = VIEWS.find((v) => v.id === s.view);
    return {
      ...view.query,
      search: s.q || undefined,
      minimumSeverity: s.severity || undefined,
      createdAfter: createdAfter(s.after),
    };
  }

  /** Fetch the page, the counts and the topics together; stale answers are dropped. */
  async load() {
    const seq = ++this.seq;
    const s = this.state;
    const filters = this.query();
    const sort = SORTS[s.sort];
    this.root.setAttribute('aria-busy', 'true');
    try {
      const [page, status, topics] = await Promise.all([
        this.api.getNotifications({
          ...filters, topic: s.topic || undefined, limit: s.size, offset: (s.page - 1) * s.size,
          sort: sort.sort, sortOrder: sort.sortOrder,
        }),
        this.api.getStatus(),
        this.api.getTopics(filters),
      ]);
      if (seq !== this.seq) return;
      if (page.notifications.length === 0 && s.page > 1 && page.totalCount > 0) {
        // The page emptied (e.g. everything on it was marked read): show the last one.
        this.state.page = Math.max(1, Math.ceil(page.totalCount / s.size));
        this.writeUrl();
        return this.load();
      }
      this.items = page.notifications;
      this.total = page.totalCount;
      this.topics = topics.topics;
      this.setStatus(status);
      const visible = new Set(this.items.map((n) => n.id));
      for (const id of this.selected) if (!visible.has(id)) this.selected.delete(id);
      this.controls.error.hidden = true;
      this.fillTopics();
      this.renderList();
      if (this.detailId) await this.renderDetail();
      else this.controls.detail.hidden = true;
    } catch (error) {
      if (seq !== this.seq) return;
      this.showError(`Could not load notifications: ${error.message}`);
    } finally {
      if (seq === this.seq) this.root.removeAttribute('aria-busy');
    }
  }

  setStatus(status) {
    this.status = status;
    const counts = { unread: status.unread, read: status.read, all: status.unread + status.read };
    for (const b of this.controls.views.children) {
      const n = counts[b.dataset.view];
      b.querySelector('.count').textContent = n === undefined ? '' : String(n);
    }
    this.controls.markAll.disabled = status.unread === 0;
    this.onStatus?.(status);
  }

  showError(message) {
    const e = this.controls.error;
    replace(e, h('span', {}, message),
      h('button', { type: 'button', class: 'btn btn-small', onclick: () => this.load() }, 'Retry'));
    e.hidden = false;
  }

  // -- rendering ------------------------------------------------------------------------------

  renderList() {
    const c = this.controls;
    const focus = this.focusedRow();
    const rows = this.items.map((n) => this.renderItem(n));
    replace(c.list, rows);
    const fresh = this.known !== null;
    for (const row of rows) {
      if (fresh && !this.known.has(row.dataset.id)) row.classList.add('fresh');
    }
    this.known = new Set([...(this.known || []), ...this.items.map((n) => n.id)]);

    c.empty.hidden = this.items.length > 0;
    c.list.hidden = this.items.length === 0;
    if (this.items.length === 0) this.renderEmpty();
    const s = this.state;
    const first = this.total === 0 ? 0 : (s.page - 1) * s.size + 1;
    const last = Math.min(this.total, s.page * s.size);
    c.range.textContent = this.total === 0 ? 'No notifications' : `${first}–${last} of ${this.total}`;
    c.prev.disabled = s.page <= 1;
    c.next.disabled = last >= this.total;
    this.renderSelection();
    if (focus) this.restoreFocus(focus);
  }

  renderEmpty() {
    const s = this.state;
    const filtered = s.q || s.topic || s.severity || s.after;
    const messages = {
      unread: ['You are all caught up', 'New notifications show up here as they arrive.'],
      read: ['Nothing read yet', 'Notifications you have read are kept here.'],
      saved: ['Nothing saved', 'Save a notification to keep it at hand.'],
      all: ['No notifications yet', 'When a service sends you something, it shows up here.'],
    };
    const [title, text] = filtered ? ['No matches', 'No notification matches these filters.'] : messages[s.view];
    replace(this.controls.empty, icon(filtered ? 'bell' : 'checks', 'empty-icon'), h('h2', {}, title),
      h('p', {}, text),
      filtered ? h('button', { type: 'button', class: 'btn', onclick: () => this.clearFilters() },
        'Clear filters') : null);
  }

  renderItem(n) {
    const p = n.payload || {};
    const severity = SEVERITIES.includes(p.severity) ? p.severity : 'normal';
    const unread = !n.read;
    const saved = Boolean(n.saved);
    const link = safeLink(p.link, this.appBaseUrl);
    const checkbox = h('input', {
      type: 'checkbox', class: 'select', checked: this.selected.has(n.id), 'aria-label': `Select: ${p.title}`,
    });
    checkbox.addEventListener('change', () => {
      if (checkbox.checked) this.selected.add(n.id);
      else this.selected.delete(n.id);
      checkbox.closest('.item').classList.toggle('selected', checkbox.checked);
      this.renderSelection();
    });
    const title = link
      ? h('a', { class: 'title', href: link, target: '_blank', rel: 'noopener noreferrer' },
        h('span', { class: 'title-text' }, p.title), icon('external', 'ext'),
        h('span', { class: 'sr-only' }, ' (opens in a new tab)'))
      : h('a', { class: 'title', href: `/?id=${encodeURIComponent(n.id)}` }, h('span', { class: 'title-text' }, p.title));
    if (link) {
      title.addEventListener('click', () => this.openedLink(n));
      title.addEventListener('auxclick', (e) => e.button === 1 && this.openedLink(n));
    } else {
      title.addEventListener('click', (e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        this.showDetail(n.id);
      });
    }
    return h('li', {
      class: `item sev-${severity}${unread ? ' unread' : ''}${this.selected.has(n.id) ? ' selected' : ''}`,
      dataset: { id: n.id },
    },
    h('label', { class: 'check' }, checkbox),
    h('span', { class: `sev-icon sev-${severity}`, title: `${SEVERITY_LABELS[severity]} severity` },
      icon(severity)),
    h('div', { class: 'item-body' },
      h('div', { class: 'item-title' },
        unread ? h('span', { class: 'unread-dot', title: 'Unread' }, h('span', { class: 'sr-only' }, 'Unread: ')) : null,
        title,
        n.user ? null : h('span', { class: 'chip chip-broadcast', title: 'Sent to everyone' },
          icon('broadcast'), 'Broadcast'),
        saved ? h('span', { class: 'chip chip-saved', title: 'Saved' }, icon('bookmark'), 'Saved') : null),
      p.description ? h('p', { class: 'desc' }, p.description) : null,
      this.meta(n, severity)),
    h('div', { class: 'item-actions' },
      h('button', {
        type: 'button', class: 'icon-btn', 'aria-label': unread ? `Mark as read: ${p.title}` : `Mark as unread: ${p.title}`,
        title: unread ? 'Mark as read (r)' : 'Mark as unread (r)', dataset: { action: 'read' },
        onclick: () => this.apply([n.id], { read: unread }),
      }, icon(unread ? 'check' : 'envelope')),
      h('button', {
        type: 'button', class: `icon-btn${saved ? ' on' : ''}`, 'aria-pressed': String(saved),
        'aria-label': `Save: ${p.title}`, title: saved ? 'Unsave (s)' : 'Save (s)', dataset: { action: 'save' },
        onclick: () => this.apply([n.id], { saved: !saved }),
      }, icon(saved ? 'bookmark' : 'bookmarkOutline'))));
  }

  meta(n, severity) {
    const p = n.payload || {};
    return h('div', { class: 'meta' },
      h('span', { class: `sev-label sev-${severity}` }, SEVERITY_LABELS[severity]),
      p.topic ? h('button', {
        type: 'button', class: 'chip chip-topic', title: `Show only topic ${p.topic}`,
        onclick: () => this.update({ topic: p.topic }),
      }, p.topic) : null,
      h('span', { class: 'origin', title: 'Sender' }, n.origin),
      timeEl(n.updated || n.created));
  }

  renderSelection() {
    const c = this.controls;
    const count = this.selected.size;
    c.selectionText.textContent = count ? `${count} selected` : '';
    for (const b of c.bulk) b.disabled = count === 0;
    c.selectAll.checked = count > 0 && count === this.items.length;
    c.selectAll.indeterminate = count > 0 && count < this.items.length;
    c.selectAll.disabled = this.items.length === 0;
  }

  // -- the deep-linked notification -----------------------------------------------------------

  showDetail(id) {
    this.detailId = id;
    this.writeUrl({ push: true });
    this.renderDetail().then(() => this.controls.detail.querySelector('h2')?.focus());
  }

  closeDetail() {
    const id = this.detailId;
    this.detailId = null;
    this.controls.detail.hidden = true;
    this.writeUrl({ push: true });
    const row = this.controls.list.querySelector(`[data-id="${CSS.escape(id || '')}"] .title`);
    (row || this.controls.search).focus();
  }

  async renderDetail() {
    const box = this.controls.detail;
    const id = this.detailId;
    let n;
    try {
      n = await this.api.getNotification(id);
    } catch (error) {
      if (id !== this.detailId) return;
      const missing = error.status === 404;
      replace(box, this.detailHead(missing ? 'Notification not found' : 'Could not load this notification'),
        h('p', { class: 'muted' }, missing
          ? 'It may have been removed, or it was sent to someone else.'
          : error.message));
      box.hidden = false;
      return;
    }
    if (id !== this.detailId) return;
    const p = n.payload || {};
    const severity = SEVERITIES.includes(p.severity) ? p.severity : 'normal';
    const link = safeLink(p.link, this.appBaseUrl);
    const unread = !n.read;
    const saved = Boolean(n.saved);
    const facts = [
      ['Severity', h('span', { class: `sev-label sev-${severity}` }, SEVERITY_LABELS[severity])],
      ['Topic', p.topic || '—'],
      ['Sender', n.origin],
      ['Sent', h('span', {}, absoluteTime(n.created), ' · ', relativeTime(n.created))],
      n.updated ? ['Updated', absoluteTime(n.updated)] : null,
      ['Audience', n.user ? 'You' : 'Everyone (broadcast)'],
      ['Status', [unread ? 'Unread' : `Read ${relativeTime(n.read)}`, saved ? 'saved' : null].filter(Boolean).join(', ')],
    ].filter(Boolean);
    const openLink = link ? h('a', {
      class: 'btn btn-primary', href: link, target: '_blank', rel: 'noopener noreferrer',
    }, icon('external'), h('span', {}, 'Open link')) : null;
    openLink?.addEventListener('click', () => this.openedLink(n));
    replace(box,
      this.detailHead(p.title, severity),
      p.description ? h('p', { class: 'detail-desc' }, p.description) : null,
      h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('div', { class: 'detail-actions' },
        openLink,
        h('button', { type: 'button', class: 'btn', onclick: () => this.apply([n.id], { read: unread }) },
          icon(unread ? 'check' : 'envelope'), h('span', {}, unread ? 'Mark as read' : 'Mark as unread')),
        h('button', { type: 'button', class: 'btn', 'aria-pressed': String(saved),
          onclick: () => this.apply([n.id], { saved: !saved }) },
        icon(saved ? 'bookmark' : 'bookmarkOutline'), h('span', {}, saved ? 'Unsave' : 'Save'))));
    box.className = `detail card sev-${severity}`;
    box.hidden = false;
  }

  detailHead(title, severity) {
    return h('div', { class: 'detail-head' },
      severity ? h('span', { class: `sev-icon sev-${severity}` }, icon(severity)) : null,
      h('h2', { id: 'detail-title', tabindex: '-1' }, title),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', title: 'Close (Esc)',
        onclick: () => this.closeDetail() }, icon('close')));
  }

  // -- actions --------------------------------------------------------------------------------

  /** Opening a notification's link marks it read (the request outlives the page if need be). */
  openedLink(n) {
    if (n.read) return;
    this.api.updateNotifications({ ids: [n.id], read: true }, { keepalive: true })
      .then(() => this.refresh())
      .catch(() => {});
  }

  async apply(ids, change) {
    if (!ids.length) return;
    try {
      // In slices: the API takes request bodies up to 100 kB.
      for (let i = 0; i < ids.length; i += UPDATE_BATCH) {
        await this.api.updateNotifications({ ids: ids.slice(i, i + UPDATE_BATCH), ...change });
      }
    } catch (error) {
      toast({ title: 'That did not work', body: error.message, severity: 'high', timeout: 8000 });
      return;
    }
    this.selected.clear();
    await this.load();
    if (ids.length > 1 || change.read === true) {
      const what = change.read === true ? 'read' : change.read === false ? 'unread'
        : change.saved ? 'saved' : 'unsaved';
      const undo = { ...change };
      for (const key of Object.keys(undo)) undo[key] = !undo[key];
      this.dismissActionToast?.();
      this.dismissActionToast = toast({
        title: `Marked ${plural(ids.length, 'notification')} as ${what}`, severity: 'low', timeout: 6000,
        actions: [{ label: 'Undo', onClick: () => this.apply(ids, undo) }],
      });
    }
  }

  async markAllRead() {
    let unread;
    try {
      unread = await this.api.getNotifications({ read: false });
    } catch (error) {
      this.showError(`Could not mark all as read: ${error.message}`);
      return;
    }
    await this.apply(unread.notifications.map((n) => n.id), { read: true });
  }

  // -- keyboard -------------------------------------------------------------------------------

  focusedRow() {
    const row = document.activeElement?.closest?.('.item');
    if (!row || !this.controls.list.contains(row)) return null;
    const index = [...this.controls.list.children].indexOf(row);
    const action = document.activeElement.dataset?.action;
    const part = action ? `[data-action="${action}"]` : document.activeElement.matches('.select') ? '.select' : '.title';
    return { id: row.dataset.id, index, part };
  }

  restoreFocus({ id, index, part }) {
    const rows = [...this.controls.list.children];
    const row = rows.find((r) => r.dataset.id === id) || rows[Math.min(index, rows.length - 1)];
    (row?.querySelector(part) || row?.querySelector('.title') || this.controls.search).focus();
  }

  moveFocus(delta) {
    const rows = [...this.controls.list.children];
    if (!rows.length) return;
    const current = this.focusedRow();
    const index = current ? Math.min(Math.max(current.index + delta, 0), rows.length - 1) : 0;
    rows[index].querySelector('.title').focus();
    rows[index].scrollIntoView({ block: 'nearest' });
  }

  /** Shortcuts: / search, j k move, x select, r read/unread, s save, Esc close. True if handled. */
  handleKey(e) {
    const c = this.controls;
    if (e.key === '/') {
      c.search.focus();
      c.search.select();
      return true;
    }
    if (e.key === 'Escape' && this.detailId) {
      this.closeDetail();
      return true;
    }
    if (e.key === 'j' || e.key === 'k') {
      this.moveFocus(e.key === 'j' ? 1 : -1);
      return true;
    }
    const row = this.focusedRow();
    if (!row) return false;
    const item = c.list.querySelector(`[data-id="${CSS.escape(row.id)}"]`);
    const key = e.key.toLowerCase();
    if (key === 'x') {
      item.querySelector('.select').click();
      return true;
    }
    if (key === 'r' || key === 's') {
      item.querySelector(`[data-action="${key === 'r' ? 'read' : 'save'}"]`).click();
      return true;
    }
    if (key === 'o') {
      item.querySelector('.title').click();
      return true;
    }
    return false;
  }
}
