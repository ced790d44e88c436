// Browser-side preferences (localStorage; nothing secret): theme, pop-ups, desktop notifications.

const DEFAULTS = { theme: 'system', toasts: 'on', desktop: 'off', pageSize: '25' };

export function getPref(name) {
  try {
    return window.localStorage.getItem(`herald.${name}`) ?? DEFAULTS[name] ?? null;
  } catch {
    return DEFAULTS[name] ?? null;
  }
}

export function setPref(name, value) {
  try {
    window.localStorage.setItem(`herald.${name}`, value);
  } catch {
    // storage disabled: the choice lasts as long as the page
  }
  window.dispatchEvent(new CustomEvent('herald:pref', { detail: { name, value } }));
}

/** 'light' | 'dark' | 'system' → sets <html data-theme>; 'system' follows prefers-color-scheme. */
export function applyTheme(theme = getPref('theme')) {
  const root = document.documentElement;
  if (theme === 'light' || theme === 'dark') root.dataset.theme = theme;
  else delete root.dataset.theme;
}

/** The theme actually showing now. */
export function effectiveTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function desktopSupported() {
  return 'Notification' in window;
}

/** Desktop notifications are shown when the person turned them on and the browser allows them. */
export function desktopEnabled() {
  return desktopSupported() && getPref('desktop') === 'on' && Notification.permission === 'granted';
}

/** Turn desktop notifications on (asking the browser) or off; resolves to the resulting state. */
export async function setDesktop(on) {
  if (!on) {
    setPref('desktop', 'off');
    return 'off';
  }
  if (!desktopSupported()) return 'unsupported';
  let permission = Notification.permission;
  if (permission === 'default') permission = await Notification.requestPermission();
  setPref('desktop', permission === 'granted' ? 'on' : 'off');
  return permission === 'granted' ? 'on' : permission;
}
