// Sortable tables: a click on a header of <table class="sortable"> sorts its rows by that column,
// by each cell's data-value when present (numbers compare as numbers; empty ones sort last),
// else its text; a second click reverses. The header says which way in aria-sort.
for (const table of document.querySelectorAll("table.sortable")) {
  const headers = [...table.tHead.rows[0].cells];
  headers.forEach((th, column) => {
    th.tabIndex = 0;
    th.addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const key = (row) => {
        const cell = row.cells[column];
        const raw = cell.dataset.value ?? cell.textContent.trim();
        const n = raw === "" ? NaN : Number(raw);
        return Number.isNaN(n) ? raw : n;
      };
      const rows = [...table.tBodies[0].rows];
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === "" || y === "") return (x === "") - (y === "");
        const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return ascending ? order : -order;
      });
      table.tBodies[0].append(...rows);
    });
  });
}
