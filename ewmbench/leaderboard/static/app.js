// Sorting and filtering of the ranking tables. No network, no libraries: works from file://.
(function () {
  "use strict";

  function cellValue(row, col, type) {
    var cell = row.children[col];
    var raw = cell ? cell.getAttribute("data-v") : "";
    if (raw === null || raw === "") { return null; }
    return type === "num" ? parseFloat(raw) : raw;
  }

  function sortTable(table, col, type, direction) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, col, type), y = cellValue(b, col, type);
      if (x === null && y === null) { return 0; }
      if (x === null) { return 1; }  // not reported: always last
      if (y === null) { return -1; }
      var order = type === "num" ? x - y : String(x).localeCompare(String(y));
      return direction === "ascending" ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    var head = table.tHead.rows[table.tHead.rows.length - 1];
    Array.prototype.forEach.call(head.cells, function (th) { th.setAttribute("aria-sort", "none"); });
    head.cells[col].setAttribute("aria-sort", direction);
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.ranking"), function (table) {
    Array.prototype.forEach.call(table.tHead.querySelectorAll("button[data-col]"), function (button) {
      button.addEventListener("click", function () {
        var th = button.parentNode;
        var col = parseInt(button.getAttribute("data-col"), 10);
        var type = button.getAttribute("data-type");
        var current = th.getAttribute("aria-sort");
        // Numbers start with the largest (best scores), text and rank with the smallest.
        var first = (type === "num" && button.textContent !== "Rank") ? "descending" : "ascending";
        var next = current === first ? (first === "ascending" ? "descending" : "ascending") : first;
        sortTable(table, col, type, next);
      });
    });
  });

  var fidelity = document.getElementById("show-fidelity");
  if (fidelity) {
    fidelity.addEventListener("change", function () { document.body.classList.toggle("show-fidelity", fidelity.checked); });
  }

  var selects = document.querySelectorAll("select[data-filter]");
  function applyFilters() {
    var wanted = {};
    Array.prototype.forEach.call(selects, function (s) { wanted[s.getAttribute("data-filter")] = s.value; });
    var shown = 0, total = 0;
    Array.prototype.forEach.call(document.querySelectorAll("table.ranking tbody tr"), function (row) {
      var keep = Object.keys(wanted).every(function (k) { return !wanted[k] || row.getAttribute("data-" + k) === wanted[k]; });
      row.hidden = !keep;
      total += 1;
      if (keep) { shown += 1; }
    });
    var status = document.querySelector(".shown");
    if (status) { status.textContent = shown + " of " + total + " entries shown"; }
  }
  Array.prototype.forEach.call(selects, function (s) { s.addEventListener("change", applyFilters); });
  if (selects.length) { applyFilters(); }
})();
