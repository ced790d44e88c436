// The settings view: the senders × channels matrix with topic toggles (spec §3.8, §8.2), and
// this browser's own preferences (pop-ups, desktop notifications, theme).
//
// As Backstage's settings card: switching a sender sets it and all its topics; a topic switch only
// counts while its sender is on; every change POSTs the whole document and the answer replaces
// the local state. Changes apply to the next notification sent.

import { h, icon, replace } from './ui.js';
import { applyTheme, desktopEnabled, desktopSupported, getPref, setDesktop, setPref } from './prefs.js';

const FIXED = 'Set by the server configuration';
const CHANNEL_LABELS = { Web: 'Inbox', Email: 'Email', SlackNotificationProcessor: 'Slack' };

function channelLabel(id) {
  return CHANNEL_LABELS[id] || id;
}

/** `external:ci` → ['external', 'ci']: the kind is shown dimmed before the name. */
function originParts(id) {
  const at = id.indexOf(':');
  return at > 0 ? [id.slice(0, at), id.slice(at + 1)] : ['', id];
}

export class SettingsView {
  constructor(root, { api }) {
    this.root = root;
    this.api = api;
    this.doc = null;
    this.expanded = new Set();
    this.pending = null;
    this.saving = false;
    // How many leading channels the server accepts in a save. Channels that exist only in the
    // server's defaultSettings (no processor) are listed last and refused ("Invalid channel").
    this.savable = null;
    this.build();
  }

  build() {
    this.status = h('p', { class: 'save-status', role: 'status', 'aria-live': 'polite' });
    this.matrix = h('div', { class: 'matrix-wrap' });
    this.browser = h('div', { class: 'prefs' });
    replace(this.root,
      h('div', { class: 'inbox-head' }, h('h1', { class: 'page-title' }, 'Settings')),
      h('section', { class: 'card settings-card', 'aria-labelledby': 'delivery-title' },
        h('div', { class: 'card-head' },
          h('h2', { id: 'delivery-title' }, 'What reaches you'),
          this.status),
        h('p', { class: 'muted' },
          'Choose, for each sender, the channels it may use to reach you. Open a sender to tune its ',
          'topics. Changes are saved at once and apply to the next notification sent.'),
        this.matrix),
      h('section', { class: 'card settings-card', 'aria-labelledby': 'browser-title' },
        h('div', { class: 'card-head' }, h('h2', { id: 'browser-title' }, 'This browser')),
        this.browser));
    this.renderBrowserPrefs();
  }

  async load() {
    this.setStatus('Loading…');
    try {
      this.doc = await this.api.getSettings();
      this.setStatus('');
      this.render();
    } catch (error) {
      this.setStatus(`Could not load settings: ${error.message}`, true);
    }
    this.renderBrowserPrefs();
  }

  setStatus(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }

  // -- the matrix -----------------------------------------------------------------------------

  /** Origins in first-seen order over all channels, each with the union of its topics. */
  origins() {
    const out = new Map();
    for (const channel of this.doc.channels) {
      for (const origin of channel.origins) {
        if (!out.has(origin.id)) out.set(origin.id, []);
        const topics = out.get(origin.id);
        for (const t of origin.topics || []) if (!topics.includes(t.id)) topics.push(t.id);
      }
    }
    return out;
  }

  originState(channel, originId) {
    const origin = channel.origins.find((o) => o.id === originId);
    return origin ? origin.enabled : channel.enabled ?? true;
  }

  topicState(channel, originId, topicId) {
    const origin = channel.origins.find((o) => o.id === originId);
    const topic = origin?.topics?.find((t) => t.id === topicId);
    if (topic) return topic.enabled;
    return origin ? origin.enabled : channel.enabled ?? true;
  }

  render() {
    const focusKey = document.activeElement?.dataset?.key;
    const channels = this.doc.channels;
    const origins = this.origins();
    if (origins.size === 0) {
      replace(this.matrix, h('div', { class: 'empty small' }, icon('bell', 'empty-icon'),
        h('h3', {}, 'No senders yet'),
        h('p', {}, 'Senders appear here once they have sent you a notification.')));
      return;
    }
    const head = h('tr', {}, h('th', { scope: 'col', class: 'origin-col' }, 'Sender'),
      channels.map((c, i) => h('th', { scope: 'col', class: 'channel-col' }, channelLabel(c.id),
        this.isFixed(i) ? h('span', { class: 'hint', title: FIXED }, 'fixed')
          : c.enabled === false ? h('span', { class: 'hint' }, 'off by default') : null)));
    const body = [];
    for (const [originId, topics] of origins) {
      const open = this.expanded.has(originId);
      const rowId = `topics-${body.length}`;
      const [kind, name] = originParts(originId);
      const label = h('span', { class: 'origin-name' }, kind ? h('span', { class: 'origin-kind' }, `${kind}:`) : null, name);
      const headCell = topics.length
        ? h('button', {
          type: 'button', class: 'expander', 'aria-expanded': String(open), 'aria-controls': rowId,
          onclick: () => this.toggleExpanded(originId),
        }, icon('chevron', 'chevron'), label, h('span', { class: 'hint' }, `${topics.length} topic${topics.length === 1 ? '' : 's'}`))
        : h('span', { class: 'expander-none' }, label);
      body.push(h('tr', { class: 'origin-row' }, h('th', { scope: 'row' }, headCell),
        channels.map((c, i) => h('td', {}, this.switch(
          `${c.id}|${originId}|`, this.originState(c, originId), `${channelLabel(c.id)}: ${originId}`,
          (on) => this.setOrigin(c, originId, topics, on), this.isFixed(i) && FIXED)))));
      topics.forEach((topicId, i) => {
        body.push(h('tr', { class: 'topic-row', hidden: !open, id: i === 0 ? rowId : undefined },
          h('th', { scope: 'row' }, h('span', { class: 'topic-name' }, topicId)),
          channels.map((c, i) => {
            const originOn = this.originState(c, originId);
            return h('td', {}, this.switch(
              `${c.id}|${originId}|${topicId}`, originOn && this.topicState(c, originId, topicId),
              `${channelLabel(c.id)}: ${originId}, topic ${topicId}`,
              (on) => this.setTopic(c, originId, topics, topicId, on),
              (this.isFixed(i) && FIXED) || (!originOn && 'Turn the sender on first')));
          })));
      });
    }
    replace(this.matrix, h('table', { class: 'matrix' }, h('thead', {}, head), h('tbody', {}, body)));
    if (focusKey) this.matrix.querySelector(`[data-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  /** A toggle; `disabledWhy` (a string) disables it and says why. */
  switch(key, on, label, onChange, disabledWhy = false) {
    const input = h('input', {
      type: 'checkbox', role: 'switch', class: 'switch', checked: on, disabled: Boolean(disabledWhy),
      'aria-label': label, dataset: { key },
    });
    input.addEventListener('change', () => onChange(input.checked));
    return h('label', { class: 'switch-wrap', title: disabledWhy || label }, input,
      h('span', { class: 'switch-track', 'aria-hidden': 'true' }));
  }

  toggleExpanded(originId) {
    if (this.expanded.has(originId)) this.expanded.delete(originId);
    else this.expanded.add(originId);
    this.render();
  }

  ensureOrigin(channel, originId, topics) {
    let origin = channel.origins.find((o) => o.id === originId);
    if (!origin) {
      const enabled = channel.enabled ?? true;
      origin = { id: originId, enabled, topics: topics.map((t) => ({ id: t, enabled })) };
      channel.origins.push(origin);
    }
    origin.topics = origin.topics || [];
    for (const t of topics) {
      if (!origin.topics.some((x) => x.id === t)) origin.topics.push({ id: t, enabled: origin.enabled });
    }
    return origin;
  }

  setOrigin(channel, originId, topics, on) {
    const origin = this.ensureOrigin(channel, originId, topics);
    origin.enabled = on;
    for (const t of origin.topics) t.enabled = on;
    this.render();
    this.save();
  }

  setTopic(channel, originId, topics, topicId, on) {
    const origin = this.ensureOrigin(channel, originId, topics);
    origin.topics.find((t) => t.id === topicId).enabled = on;
    this.render();
    this.save();
  }

  /** POST the whole document; changes made while a save is running go in the next one. */
  async save() {
    this.pending = structuredClone(this.doc);
    if (this.saving) return;
    this.saving = true;
    while (this.pending) {
      const doc = this.pending;
      this.pending = null;
      this.setStatus('Saving…');
      try {
        const fresh = await this.post(doc.channels);
        if (!this.pending) {
          this.doc = fresh;
          this.render();
        }
        this.setStatus('Saved. Applies to the next notification.');
      } catch (error) {
        this.pending = null;
        this.setStatus(`Could not save: ${error.message}`, true);
        await this.load();
      }
    }
    this.saving = false;
  }

  /** POST the channels the server accepts; a refused trailing channel is configuration-only
   * (nothing of it can be stored), so it is left out and the save tried again. */
  async post(channels) {
    let sent = this.savable === null ? channels : channels.slice(0, this.savable);
    for (;;) {
      try {
        const fresh = await this.api.updateSettings({ channels: sent });
        this.savable = sent.length;
        return fresh;
      } catch (error) {
        if (error.status !== 400 || !/Invalid channel/.test(error.message) || sent.length <= 1) throw error;
        sent = sent.slice(0, -1);
      }
    }
  }

  isFixed(index) {
    return this.savable !== null && index >= this.savable;
  }

  // -- this browser ---------------------------------------------------------------------------

  renderBrowserPrefs() {
    const toasts = this.prefSwitch('pref-toasts', getPref('toasts') === 'on',
      (on) => setPref('toasts', on ? 'on' : 'off'));
    const desktopNote = h('span', { class: 'hint' });
    const desktop = this.prefSwitch('pref-desktop', desktopEnabled(), async (on, input) => {
      const result = await setDesktop(on);
      input.checked = result === 'on';
      desktopNote.textContent = this.desktopHint(result);
    }, !desktopSupported());
    desktopNote.textContent = this.desktopHint();
    const theme = h('select', { class: 'input', id: 'pref-theme' },
      [['system', 'Same as the system'], ['light', 'Light'], ['dark', 'Dark']]
        .map(([v, t]) => h('option', { value: v }, t)));
    theme.value = getPref('theme');
    theme.addEventListener('change', () => {
      setPref('theme', theme.value);
      applyTheme(theme.value);
    });
    replace(this.browser,
      this.prefRow('pref-toasts', 'Pop-up notices', 'Show a notice in this page when a notification arrives.', toasts),
      this.prefRow('pref-desktop', 'Desktop notifications',
        h('span', {}, 'Let the browser show new notifications while Herald is in the background. ', desktopNote),
        desktop),
      this.prefRow('pref-theme', 'Theme', 'Light, dark, or follow the system.', theme));
  }

  desktopHint(result) {
    if (!desktopSupported()) return 'This browser does not support them.';
    const permission = result && result !== 'on' && result !== 'off' ? result : Notification.permission;
    if (permission === 'denied') return 'The browser blocks them for this site: allow them in its site settings.';
    return '';
  }

  prefSwitch(id, on, onChange, disabled = false) {
    const input = h('input', { type: 'checkbox', role: 'switch', class: 'switch', id, checked: on, disabled });
    input.addEventListener('change', () => onChange(input.checked, input));
    return h('span', { class: 'switch-wrap' }, input, h('span', { class: 'switch-track', 'aria-hidden': 'true' }));
  }

  prefRow(id, title, text, control) {
    return h('div', { class: 'pref-row' },
      h('div', { class: 'pref-text' }, h('label', { for: id, class: 'pref-title' }, title),
        h('p', { class: 'muted' }, text)),
      control);
  }
}
