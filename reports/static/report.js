/* lossconf report: sortable columns, one filter box, copy buttons.
   Reads only the DOM (data-sort attributes and text); no data is inlined here. */
(function () {
  "use strict";

  /* ---- sorting ---- */

  // A cell's sort key: data-sort if present, else its text. Numbers compare as
  // numbers; "NaN" (an undefined error) sorts after Infinity.
  function sortKey(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    if (raw === "NaN" || raw === "nan") return { num: true, rank: 1, value: 0 };
    var n = Number(raw);
    if (raw !== "" && raw !== "—" && !isNaN(n)) return { num: true, rank: 0, value: n };
    return { num: false, rank: 0, value: raw.toLowerCase() };
  }

  function compareKeys(a, b) {
    if (a.num && b.num) {
      if (a.rank !== b.rank) return a.rank - b.rank;
      return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
    }
    if (a.num !== b.num) return a.num ? -1 : 1;
    return a.value.localeCompare(b.value, undefined, { numeric: true });
  }

  function sortTable(table, column, th) {
    var descending = th.getAttribute("aria-sort") === "ascending";
    var heads = table.tHead.rows[table.tHead.rows.length - 1].cells;
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (row, index) {
      return { row: row, index: index, key: sortKey(row.cells[column]) };
    });
    rows.sort(function (a, b) {
      var c = compareKeys(a.key, b.key);
      if (descending) c = -c;
      return c !== 0 ? c : a.index - b.index;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    var heads = table.tHead.rows[table.tHead.rows.length - 1].cells;
    Array.prototype.forEach.call(heads, function (th, column) {
      if (th.classList.contains("nosort")) return;
      th.tabIndex = 0;
      th.title = "Sort by " + th.textContent.trim();
      th.addEventListener("click", function () { sortTable(table, column, th); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortTable(table, column, th);
        }
      });
    });
  });

  /* ---- filtering ---- */

  // Every row of a [data-filterable] table and every failure block is a
  // [data-row]; a row stays visible when its text contains every word typed.
  var input = document.getElementById("filter");
  var status = document.getElementById("filter-status");
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-row]"));
  var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });

  function applyFilter() {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row, i) {
      var match = words.every(function (w) { return texts[i].indexOf(w) !== -1; });
      row.hidden = !match;
      if (match) shown += 1;
    });
    status.textContent = words.length ? shown + " of " + rows.length + " rows" : "";
  }

  if (input) {
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(applyFilter, 80);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { input.value = ""; applyFilter(); }
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "/" && document.activeElement !== input) {
        event.preventDefault();
        input.focus();
      }
    });
  }

  /* ---- copy buttons ---- */

  function copied(button, ok) {
    button.textContent = ok ? "copied" : "select & copy";
    button.classList.toggle("done", ok);
    setTimeout(function () {
      button.textContent = "copy";
      button.classList.remove("done");
    }, 1600);
  }

  function copyFallback(text, button) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    copied(button, ok);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { copied(button, true); },
        function () { copyFallback(text, button); }
      );
    } else {
      copyFallback(text, button);
    }
  });
})();
