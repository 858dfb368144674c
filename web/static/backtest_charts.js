// LootCapital backtest charts, drawn with uPlot from the JSON the server renders next to them
// (web/backtest_views.py): the /backtests page and the CLI's one-file HTML report both use it.
//
// * a result (.bt-result): the equity curve, the drawdown (percent below the highest equity so
//   far) and, per symbol, the closes with the trades' entries (long, short) and exits as
//   markers at the bars they filled in (the CLI's report) or, on the /backtests page, its
//   candlesticks with volume and the trades' entry and exit markers, each exit with its reason
//   (Lightweight Charts through web/static/candles.js: wheel or pinch zooms, drag pans; the
//   data from the chart's data-src, /ui/backtests/{id}/chart?symbol=). The legend under a
//   candlestick chart writes the bar under the cursor and the trades' fills in it. What a
//   candlestick chart drew is written on its element (data-candles, data-markers,
//   data-entries, data-exits, data-trades, data-timeframe, data-tf-s, and data-visible-from
//   and data-visible-to, the visible range in bars, as it is zoomed and panned), for the
//   browser tests;
// * a comparison (.bt-compare): the equity curves of several backtests overlaid, each as its
//   return in percent of its starting equity.
//
// window.LootBacktestCharts.draw(scope) draws every result and comparison under `scope` not
// drawn yet; each chart follows its container's width when the window is resized. Only the
// candlestick charts fetch their data; the rest is in the page. Times are seconds UTC.
(function () {
  "use strict";

  var HEIGHT = 220;
  var PRICE_HEIGHT = 260;
  var COLORS = ["#1d4ed8", "#b91c1c", "#047857", "#b45309", "#7c3aed", "#0e7490", "#be185d",
    "#4d7c0f", "#334155", "#c2410c"];
  var charts = [];
  var candleCharts = []; // { el, chart }: the candlestick charts drawn, removed with their element
  // Exit reason -> the text beside an exit's marker.
  var REASONS = {
    signal: "signal", stop: "stop", take_profit: "TP", liquidation: "liq", time: "time",
    regime: "regime", end: "end",
  };

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
    Array.prototype.forEach.call(root.querySelectorAll('[data-chart="candles"]'), loadCandles);
    root.setAttribute("data-drawn", "true");
  }

  function exitText(m) {
    return REASONS[m.reason] || m.reason || "exit";
  }

  function fillText(m, precision) {
    var what = m.kind === "entry" ? m.direction + " entry" : "exit (" + m.reason + ", pnl " + m.pnl + ")";
    return "#" + m.trade + " " + what + " " + m.price.toFixed(precision);
  }

  // The legend under a candlestick chart: the bar at `time` and the trades' fills in it.
  function legend(el, data, byTime, bar, time) {
    var out = el.parentNode.querySelector(".bt-candles-legend");
    if (!out || !bar) return;
    var p = data.precision;
    var fills = (byTime[time] || []).map(function (m) { return fillText(m, p); });
    out.textContent = window.LootCandles.utcMinute(time) + "  O " + bar.open.toFixed(p) +
      "  H " + bar.high.toFixed(p) + "  L " + bar.low.toFixed(p) + "  C " + bar.close.toFixed(p) +
      (fills.length ? "  \u00b7  " + fills.join("  \u00b7  ") : "");
  }

  function drawCandles(el, data) {
    var C = window.LootCandles;
    if (!data.bars.length) {
      el.textContent = "No bar of " + data.symbol + " is stored for this backtest's period.";
      return;
    }
    var drawn = C.create(el, data.precision);
    drawn.candles.setData(data.bars.map(C.candle));
    drawn.volume.setData(data.bars.map(C.volumeBar));
    drawn.markers.setMarkers(data.markers.map(function (m) { return C.marker(m, exitText); }));
    drawn.chart.timeScale().fitContent();
    var byTime = {};
    data.markers.forEach(function (m) { (byTime[m.time] = byTime[m.time] || []).push(m); });
    var last = data.bars[data.bars.length - 1];
    drawn.chart.subscribeCrosshairMove(function (param) {
      var bar = param && param.seriesData ? param.seriesData.get(drawn.candles) : null;
      if (bar) legend(el, data, byTime, bar, bar.time); else legend(el, data, byTime, last, last.time);
    });
    drawn.chart.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
      if (!range) return;
      el.setAttribute("data-visible-from", range.from.toFixed(2));
      el.setAttribute("data-visible-to", range.to.toFixed(2));
    });
    legend(el, data, byTime, last, last.time);
    var count = function (kind) { return data.markers.filter(function (m) { return m.kind === kind; }).length; };
    el.setAttribute("data-candles", String(data.bars.length));
    el.setAttribute("data-markers", String(data.markers.length));
    el.setAttribute("data-entries", String(count("entry")));
    el.setAttribute("data-exits", String(count("exit")));
    el.setAttribute("data-trades", String(data.trades));
    el.setAttribute("data-timeframe", data.timeframe);
    el.setAttribute("data-tf-s", String(data.tf_s));
    el.setAttribute("data-drawn", "true");
    candleCharts.push({ el: el, chart: drawn.chart });
  }

  // A candlestick chart's data, fetched once; then drawn (or why not written in its place).
  function loadCandles(el) {
    var src = el.getAttribute("data-src");
    if (!src || !window.LootCandles || typeof window.LightweightCharts === "undefined") return;
    fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("chart " + src + ": HTTP " + r.status);
        return r.json();
      })
      .then(function (data) { drawCandles(el, data); })
      .catch(function (err) {
        el.textContent = "The chart could not be drawn: " + err.message;
        el.setAttribute("data-error", err.message);
        console.warn(err);
      });
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
    candleCharts = candleCharts.filter(function (c) {
      if (document.body.contains(c.el)) return true;
      c.chart.remove(); // its element was swapped out: stop its resize observer and canvases
      return false;
    });
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
