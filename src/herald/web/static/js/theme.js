// Applies the chosen colour theme before the page paints (a classic script, loaded in <head>).
// "system" (the default) leaves it to prefers-color-scheme.
(function () {
  try {
    var theme = window.localStorage.getItem('herald.theme');
    if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  } catch (e) {
    // storage disabled: follow the system
  }
})();
