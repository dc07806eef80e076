// Plots of the pages, drawn with uPlot (vendor/uplot, MIT) from JSON the server embeds in the page:
// every <div data-plot="ID"> is drawn from <script type="application/json" id="ID">, shaped as
//   {x: [unix s], tz: "Asia/Seoul", y_label, y_range?: [min, max],
//    series: [{label, values: [number|null], color, dash?: true (a projection), points_only?: true}],
//    shade?: [[start s, end s], ...], shade_label?}
// A points_only series marks (QC flags); shade spans are filled behind the data (outages).
// After drawing, the element's data-drawn says how many non-null values it plotted.

function shader(spans) {
  return (u) => {
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = "rgba(180, 35, 24, 0.14)";
    for (const [a, b] of spans) {
      const x0 = u.valToPos(a, "x", true), x1 = u.valToPos(b, "x", true);
      const left = Math.max(x0, u.bbox.left), right = Math.min(x1, u.bbox.left + u.bbox.width);
      if (right > left) ctx.fillRect(left, u.bbox.top, Math.max(right - left, 2), u.bbox.height);
    }
    ctx.restore();
  };
}

function draw(el) {
  const spec = JSON.parse(document.getElementById(el.dataset.plot).textContent);
  const series = [{}];
  const data = [spec.x];
  let drawn = 0;
  for (const s of spec.series) {
    const one = {label: s.label, stroke: s.color, width: 2, spanGaps: false};
    if (s.dash) Object.assign(one, {dash: [6, 4], spanGaps: true});  // a projection: two points, one line
    if (s.points_only) {
      one.paths = () => null;
      one.points = {show: true, size: 9, stroke: s.color, fill: s.color};
    }
    series.push(one);
    data.push(s.values);
    drawn += s.values.filter((v) => v !== null && v !== undefined).length;
  }
  const opts = {
    width: Math.max(el.clientWidth, 320),
    height: 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), spec.tz || "UTC"),
    scales: {x: {time: true}, y: spec.y_range ? {range: spec.y_range} : {}},
    axes: [{}, {label: spec.y_label}],
    series,
    hooks: spec.shade && spec.shade.length ? {drawClear: [shader(spec.shade)]} : {},
  };
  el.uplot = new uPlot(opts, data, el);
  el.dataset.drawn = String(drawn);
}

for (const el of document.querySelectorAll("[data-plot]")) draw(el);
