// Loaded as a classic script in <head>, before the page is drawn, so that a
// dark page never flashes white: the theme the agent chose (or none, to
// follow the system's prefers-color-scheme).
(function () {
  try {
    var v = localStorage.getItem("authwatch.theme");
    if (v === "dark" || v === "light") document.documentElement.dataset.theme = v;
  } catch (e) { /* storage disabled: follow the system */ }
})();
