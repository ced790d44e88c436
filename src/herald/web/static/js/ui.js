// Small DOM helpers shared by the views: element builder, icons, relative time, toasts.
// Text always goes in through text nodes, never parsed as HTML: notification content is untrusted.

/** Build an element: h('button', {class: 'x', onclick: fn, 'aria-label': 'y'}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== 'string') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const ICONS = {
  bell: 'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z',
  check: 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4L9 16.2Z',
  checks: 'M1.6 13.4 3 12l4.6 4.6L6.2 18l-4.6-4.6Zm5.6 0L8.6 12l4.6 4.6L22.4 7.4 23.8 8.8 13.2 19.4l-6-6Zm4.2-1.4 7.6-7.6 1.4 1.4-7.6 7.6-1.4-1.4Z',
  envelope: 'M20 4H4a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2Zm0 4-8 5-8-5V6l8 5 8-5v2Z',
  bookmark: 'M17 3H7a2 2 0 0 0-2 2v16l7-3 7 3V5a2 2 0 0 0-2-2Z',
  bookmarkOutline: 'M17 3H7a2 2 0 0 0-2 2v16l7-3 7 3V5a2 2 0 0 0-2-2Zm0 15-5-2.18L7 18V5h10v13Z',
  broadcast: 'M12 10a2 2 0 1 0 0 4 2 2 0 0 0 0-4Zm-6.36-4.36 1.42 1.42a7 7 0 0 0 0 9.88l-1.42 1.42a9 9 0 0 1 0-12.72Zm12.72 0a9 9 0 0 1 0 12.72l-1.42-1.42a7 7 0 0 0 0-9.88l1.42-1.42ZM8.46 8.46l1.42 1.42a3 3 0 0 0 0 4.24l-1.42 1.42a5 5 0 0 1 0-7.08Zm7.08 0a5 5 0 0 1 0 7.08l-1.42-1.42a3 3 0 0 0 0-4.24l1.42-1.42Z',
  critical: 'M12 2 1 21h22L12 2Zm1 15h-2v-2h2v2Zm0-4h-2V9h2v4Z',
  high: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Zm1 15h-2v-2h2v2Zm0-4h-2V7h2v6Z',
  normal: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Zm1 15h-2v-6h2v6Zm0-8h-2V7h2v2Z',
  low: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20Zm0 14a4 4 0 1 1 0-8 4 4 0 0 1 0 8Z',
  external: 'M14 3v2h3.59l-9.83 9.83 1.41 1.41L19 6.41V10h2V3h-7ZM19 19H5V5h7V3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2v-7h-2v7Z',
  close: 'M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12 19 6.41Z',
  sun: 'M12 7a5 5 0 1 0 0 10 5 5 0 0 0 0-10ZM11 1h2v3h-2V1Zm0 19h2v3h-2v-3ZM1 11h3v2H1v-2Zm19 0h3v2h-3v-2ZM4.22 5.64l1.42-1.42 2.12 2.12-1.42 1.42-2.12-2.12Zm12.02 12.02 1.42-1.42 2.12 2.12-1.42 1.42-2.12-2.12ZM18.36 4.22l1.42 1.42-2.12 2.12-1.42-1.42 2.12-2.12ZM5.64 19.78l-1.42-1.42 2.12-2.12 1.42 1.42-2.12 2.12Z',
  moon: 'M12.3 2a9 9 0 1 0 9.7 12.2A7.5 7.5 0 0 1 12.3 2Z',
  chevron: 'M9.29 6.71 10.7 5.3 17.4 12l-6.7 6.7-1.41-1.41L14.58 12 9.29 6.71Z',
  left: 'M15.41 7.41 14 6l-6 6 6 6 1.41-1.41L10.83 12l4.58-4.59Z',
  right: 'M8.59 16.59 10 18l6-6-6-6-1.41 1.41L13.17 12l-4.58 4.59Z',
  keyboard: 'M20 5H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2Zm-9 3h2v2h-2V8Zm0 3h2v2h-2v-2ZM8 8h2v2H8V8Zm0 3h2v2H8v-2ZM5 8h2v2H5V8Zm0 3h2v2H5v-2Zm11 5H8v-2h8v2Zm0-3h-2v-2h2v2Zm0-3h-2V8h2v2Zm3 3h-2v-2h2v2Zm0-3h-2V8h2v2Z',
};

/** An inline SVG icon (decorative: hidden from assistive technology). */
export function icon(name, cls = '') {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon ${cls}`.trim());
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name] || ICONS.bell);
  svg.append(path);
  return svg;
}

export const SEVERITIES = ['critical', 'high', 'normal', 'low'];
export const SEVERITY_LABELS = { critical: 'Critical', high: 'High', normal: 'Normal', low: 'Low' };

const UNITS = [
  ['year', 365 * 24 * 3600], ['month', 30 * 24 * 3600], ['week', 7 * 24 * 3600],
  ['day', 24 * 3600], ['hour', 3600], ['minute', 60], ['second', 1],
];
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const absoluteFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** "5 min. ago", "yesterday"; "just now" under 45 seconds. */
export function relativeTime(iso, now = Date.now()) {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  if (Math.abs(seconds) < 45) return 'just now';
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') {
      return relativeFormat.format(Math.round(seconds / size), unit);
    }
  }
  return '';
}

export function absoluteTime(iso) {
  return absoluteFormat.format(new Date(iso));
}

/** A <time> element showing relative time; `refreshTimes(root)` updates them. */
export function timeEl(iso) {
  return h('time', { datetime: iso, title: absoluteTime(iso) }, relativeTime(iso));
}

export function refreshTimes(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time[datetime]')) {
    el.textContent = relativeTime(el.getAttribute('datetime'), now);
  }
}

/** Call `fn` at most once per `ms`: at once, and once more at the end of a burst. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return (...args) => {
    const wait = last + ms - Date.now();
    if (wait <= 0 && !timer) {
      last = Date.now();
      fn(...args);
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn(...args);
      }, Math.max(wait, 0));
    }
  };
}

export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.flush = (...args) => {
    clearTimeout(timer);
    fn(...args);
  };
  return debounced;
}

/** Only http(s) and app-relative links are followed (the API validates them too). */
export function safeLink(link, appBaseUrl) {
  if (!link || typeof link !== 'string') return null;
  try {
    const base = appBaseUrl || window.location.origin;
    const url = new URL(link, base.endsWith('/') ? base : `${base}/`);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

export function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

// -- toasts ---------------------------------------------------------------------------------

const MAX_TOASTS = 4;
const closers = new WeakMap();

/**
 * Show a toast. `severity` colours it; `actions` are [{label, onClick}]; it hides itself after
 * `timeout` ms (paused while hovered or focused); `onClose` runs once when it is gone, however it
 * went. Returns a function that dismisses it.
 */
export function toast({ title, body = '', severity = 'normal', actions = [], timeout = 15000, onClose }) {
  const region = document.getElementById('toasts');
  if (!region) return () => {};
  let timer = null;
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    el.remove();
    onClose?.();
  };
  const dismiss = () => {
    if (closed || el.classList.contains('leaving')) return;
    clearTimeout(timer);
    el.classList.add('leaving');
    setTimeout(finish, 180);
  };
  const start = () => {
    clearTimeout(timer);
    if (timeout > 0 && !closed) timer = setTimeout(dismiss, timeout);
  };
  const el = h('div', { class: `toast sev-${severity}`, role: severity === 'critical' ? 'alert' : 'status' },
    icon(SEVERITIES.includes(severity) ? severity : 'bell', 'toast-icon'),
    h('div', { class: 'toast-text' },
      h('strong', { class: 'toast-title' }, title),
      body ? h('span', { class: 'toast-body' }, body) : null,
      actions.length ? h('div', { class: 'toast-actions' },
        actions.map((a) => h('button', {
          type: 'button', class: 'btn btn-small',
          onclick: () => { dismiss(); a.onClick(); },
        }, a.label))) : null),
    h('button', { type: 'button', class: 'icon-btn toast-close', 'aria-label': 'Dismiss', onclick: dismiss },
      icon('close')));
  el.addEventListener('mouseenter', () => clearTimeout(timer));
  el.addEventListener('mouseleave', start);
  el.addEventListener('focusin', () => clearTimeout(timer));
  el.addEventListener('focusout', start);
  closers.set(el, finish);
  region.append(el);
  while (region.children.length > MAX_TOASTS) {
    const oldest = region.firstElementChild;
    const close = closers.get(oldest);
    if (close) close();
    else oldest.remove();
  }
  start();
  return dismiss;
}
