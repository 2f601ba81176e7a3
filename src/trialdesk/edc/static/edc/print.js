// the casebook's Print button (no inline script: the Content Security Policy allows none)
document.getElementById("print-casebook")?.addEventListener("click", () => window.print());
