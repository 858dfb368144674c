// LootCapital backtest charts, drawn with uPlot from the JSON the server renders next to them
// (web/backtest_views.py): the /backtests page and the CLI's one-file HTML report both use it.
//
// * a result (.bt-result): the equity curve, the drawdown (percent below the highest equity so
//   far) and, per symbol, the closes with the trades' entries (long, short) and exits as
//   markers at the bars they filled in;
// * a comparison (.bt-compare): the equity curves of several backtests overlaid, each as its
//   return in percent of its starting equity.
//
// window.LootBacktestCharts.draw(scope) draws every result and comparison under `scope` not
// drawn yet; each chart follows its container's width when the window is resized. No data is
// fetched: it is all in the page. Times are seconds UTC.
(function () {
  "use strict";

  var HEIGHT = 220;
  var PRICE_HEIGHT = 260;
  var COLORS = ["#1d4ed8", "#b91c1c", "#047857", "#b45309", "#7c3aed", "#0e7490", "#be185d",
    "#4d7c0f", "#334155", "#c2410c"];
  var charts = [];

  function widthOf(el) {
    return Math.max(260, Math.floor(el.getBoundingClientRect().width) || 600);
  }

  function plot(el, height, series, data) {
    if (!el) return null;
    var chart = new window.uPlot({
      width: widthOf(el),
      height: height,
      series: [{ label: "UTC" }].concat(series),
      scales: { x: { time: true } },
      axes: [{}, { size: 70 }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
    }, data, el);
    charts.push({ el: el, chart: chart, height: height });
    el.setAttribute("data-drawn", "true");
    return chart;
  }

  // A series drawn as points only: `fill` null for a hollow one.
  function marker(label, color, fill, size) {
    return {
      label: label, stroke: color, fill: fill || "#ffffff", width: 0,
      paths: function () { return null; },
      points: { show: true, size: size, width: 2, stroke: color, fill: fill || "#ffffff" },
    };
  }

  function drawResult(root) {
    var source = root.querySelector("script.bt-chart-data");
    if (!source || root.getAttribute("data-drawn") === "true") return;
    var data = JSON.parse(source.textContent);
    var eq = data.equity;
    plot(root.querySelector('[data-chart="equity"]'), HEIGHT,
      [{ label: "Equity", stroke: "#1d4ed8", width: 1.5 }], [eq.t, eq.equity]);
    plot(root.querySelector('[data-chart="drawdown"]'), HEIGHT,
      [{ label: "Drawdown %", stroke: "#b91c1c", fill: "rgba(185, 28, 28, 0.12)", width: 1 }],
      [eq.t, eq.drawdown_pct]);
    data.prices.forEach(function (p) {
      var el = root.querySelector('[data-chart="price"][data-symbol="' + p.symbol + '"]');
      plot(el, PRICE_HEIGHT, [
        { label: p.symbol + " close", stroke: "#475569", width: 1 },
        marker("Exit", "#0f172a", null, 13),
        marker("Long entry", "#047857", "#047857", 7),
        marker("Short entry", "#b91c1c", "#b91c1c", 7),
      ], [p.t, p.close, p.exit, p.long_entry, p.short_entry]);
    });
    root.setAttribute("data-drawn", "true");
  }

  function drawCompare(root) {
    var source = root.querySelector("script.bt-compare-data");
    if (!source || root.getAttribute("data-drawn") === "true") return;
    var data = JSON.parse(source.textContent);
    var series = data.series.map(function (s, k) {
      return { label: s.label, stroke: COLORS[k % COLORS.length], width: 1.5, spanGaps: true };
    });
    plot(root.querySelector('[data-chart="compare"]'), PRICE_HEIGHT, series,
      [data.t].concat(data.series.map(function (s) { return s.values; })));
    root.setAttribute("data-drawn", "true");
  }

  function draw(scope) {
    var base = scope || document;
    charts = charts.filter(function (c) { return document.body.contains(c.el); });
    Array.prototype.forEach.call(base.querySelectorAll(".bt-result"), drawResult);
    Array.prototype.forEach.call(base.querySelectorAll(".bt-compare"), drawCompare);
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    if (resizing !== null) window.clearTimeout(resizing);
    resizing = window.setTimeout(function () {
      resizing = null;
      charts.forEach(function (c) { c.chart.setSize({ width: widthOf(c.el), height: c.height }); });
    }, 150);
  });

  window.LootBacktestCharts = { draw: draw };
})();
