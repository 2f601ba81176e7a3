// The AE form's CTCAE term search: suggests terms as the user types and shows each grade's definition.
// A file, not an inline script, so that the Content Security Policy can refuse every inline script.
(function () {
  var input = document.querySelector("[data-ctcae-search]"), list = document.getElementById("ctcae-terms");
  var coding = document.getElementById("term-coding"), defs = document.getElementById("grade-definitions");
  var grade = document.getElementById("id_grade"), found = {}, timer = null;
  if (!input) return;
  function show(t) {
    coding.textContent = t ? "MedDRA " + t.meddra_code + " · " + t.soc : "";
    defs.replaceChildren();
    if (!t) return;
    for (var g = 1; g <= 5; g++) {
      var dt = document.createElement("dt"), dd = document.createElement("dd"), text = t.grades[g];
      dt.textContent = "Grade " + g; dd.textContent = text || "— not defined for this term";
      defs.append(dt, dd);
      var opt = grade && grade.querySelector('option[value="' + g + '"]');
      if (opt) opt.disabled = !text;
    }
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var q = input.value.trim();
    if (found[q.toLowerCase()]) { show(found[q.toLowerCase()]); return; }
    timer = setTimeout(function () {
      if (!q) return;
      fetch("/api/ctcae/search?q=" + encodeURIComponent(q), {credentials: "same-origin"}).then(function (r) { return r.json(); })
        .then(function (terms) {
          list.replaceChildren();
          terms.forEach(function (t) {
            found[t.term.toLowerCase()] = t;
            var o = document.createElement("option"); o.value = t.term; o.label = t.soc; list.append(o);
          });
          show(found[input.value.trim().toLowerCase()] || null);
        });
    }, 150);
  });
})();
