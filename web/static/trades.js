// LootCapital trade history page (/trades): the filters and the charts.
//
// * Applying the filters (#trade-filters) keeps the page: the URL takes the new query and
//   "trades-filtered" fires on <body>, which reloads the statistics, the attribution and the
//   table (hx-trigger="... trades-filtered from:body", each including the form), and the charts.
//   "Export CSV" submits the same form to /ui/trades.csv, a download.
// * The charts (uPlot): the drawdown of the closed-trade equity and the PnL bars per day, week
//   or month, from the JSON the statistics partial carries (#trade-charts-data); the
//   attribution's bars from the JSON of the attribution partial (#attribution-data); each drawn
//   again whenever its partial is swapped in.
// Times are UTC everywhere.
(function () {
  "use strict";

  var HEIGHT = 220;
  var POS = "#047857", NEG = "#b91c1c", POS_FILL = "rgba(4, 120, 87, 0.75)", NEG_FILL = "rgba(185, 28, 28, 0.75)";
  var plots = {}; // element id -> uPlot
  var series = null; // the last charts.json
  var period = "day";
  var PERIOD_S = { day: 86400, week: 7 * 86400, month: 31 * 86400 }; // a bar's width at most

  function query() {
    var form = document.getElementById("trade-filters");
    if (!form) return "";
    var params = new URLSearchParams(new FormData(form));
    Array.from(params.keys()).forEach(function (k) { if (!params.get(k)) params.delete(k); });
    return params.toString();
  }

  function utcDay(ts) { return new Date(ts * 1000).toISOString().slice(0, 10); }

  function fmt(v, places) {
    return v == null ? "—" : v.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
  }

  function width(el) { return Math.max(240, el.clientWidth); }

  function place(id, opts, data) {
    var el = document.getElementById(id);
    if (!el || typeof uPlot === "undefined") return;
    if (plots[id]) { plots[id].destroy(); delete plots[id]; }
    el.textContent = "";
    if (!data[0].length) {
      var p = document.createElement("p");
      p.className = "muted pad chart-empty";
      p.textContent = "No closed trades match these filters.";
      el.appendChild(p);
      return;
    }
    opts.width = width(el);
    opts.height = HEIGHT;
    plots[id] = new uPlot(opts, data, el);
  }

  var axisStyle = { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" } };

  function timeAxis() {
    return Object.assign({}, axisStyle, {
      values: function (u, splits) { return splits.map(function (ts) { return utcDay(ts).slice(5); }); },
    });
  }

  // The PnL bars start at 00:00 UTC: a tick between days (uPlot's hours on a short range) gets
  // no label, so each day is named once.
  function dayAxis() {
    return Object.assign({}, axisStyle, {
      values: function (u, splits) {
        return splits.map(function (ts) { return ts % 86400 ? "" : utcDay(ts).slice(5); });
      },
    });
  }

  function valueAxis(suffix) {
    return Object.assign({}, axisStyle, {
      size: 64,
      values: function (u, vals) { return vals.map(function (v) { return v.toLocaleString("en-US") + suffix; }); },
    });
  }

  function drawDrawdown() {
    var c = series.curve, t = [], dd = [];
    for (var i = 0; i < c.time.length; i++) { t.push(c.time[i] / 1000); dd.push(-100 * c.drawdown[i]); }
    place("drawdown-chart", {
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true }, y: { range: function (u, min) { return [Math.min(min, -1), 0]; } } },
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: "Exit", value: function (u, ts) { return ts == null ? "—" : new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC"; } },
        { label: "Drawdown", stroke: NEG, width: 1.5, fill: "rgba(185, 28, 28, 0.12)", value: function (u, v) { return fmt(v, 2) + " %"; } },
      ],
      axes: [timeAxis(), valueAxis(" %")],
    }, [t, dd]);
  }

  // Two series, gains and losses, so that each bar gets its colour.
  function barSeries(label) {
    var bars = uPlot.paths.bars({ size: [0.7, 40] });
    return [
      { label: label + " gain", stroke: POS, fill: POS_FILL, paths: bars, points: { show: false }, value: function (u, v) { return fmt(v, 2); } },
      { label: label + " loss", stroke: NEG, fill: NEG_FILL, paths: bars, points: { show: false }, value: function (u, v) { return fmt(v, 2); } },
    ];
  }

  function split(values) {
    return [
      values.map(function (v) { return v > 0 ? v : null; }),
      values.map(function (v) { return v < 0 ? v : null; }),
    ];
  }

  function drawPnl() {
    var rows = series.pnl[period] || [];
    var t = rows.map(function (r) { return r[0] / 1000; });
    var parts = split(rows.map(function (r) { return r[1]; }));
    place("pnl-chart", {
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      // Half a period either side of the data, so that the first and last bars show whole; a
      // lone bar's range is taken from the data too: uPlot widens one point by 86,400,000 (a
      // day in ms, 1000 days of these seconds) before it asks.
      scales: { x: { time: true, range: function (u) {
        var xs = u.data[0], pad = PERIOD_S[period] / 2;
        return [xs[0] - pad, xs[xs.length - 1] + pad];
      } }, y: { range: function (u, min, max) { return [Math.min(min || 0, 0), Math.max(max || 0, 0)]; } } },
      series: [{ label: period, value: function (u, ts) { return ts == null ? "—" : utcDay(ts); } }].concat(barSeries("PnL")),
      axes: [dayAxis(), valueAxis("")],
    }, [t, parts[0], parts[1]]);
  }

  function drawAttribution() {
    var source = document.getElementById("attribution-data");
    if (!source) return;
    var chart = JSON.parse(source.textContent);
    var keys = chart.keys, x = keys.map(function (k, i) { return i; });
    var parts = split(chart.pnl);
    place("attribution-chart", {
      scales: { x: { time: false, range: [-0.5, Math.max(keys.length - 0.5, 0.5)] }, y: { range: function (u, min, max) { return [Math.min(min || 0, 0), Math.max(max || 0, 0)]; } } },
      series: [{ label: "group", value: function (u, i) { return i == null ? "—" : keys[i]; } }].concat(barSeries("PnL")),
      axes: [
        Object.assign({}, axisStyle, {
          splits: function () { return x; },
          values: function (u, splits) { return splits.map(function (i) { return keys[i] || ""; }); },
          rotate: keys.length > 8 ? -45 : 0,
          size: keys.length > 8 ? 70 : 40,
        }),
        valueAxis(""),
      ],
    }, [x, parts[0], parts[1]]);
  }

  // The statistics partial carries the drawdown and PnL series (#trade-charts-data).
  function drawTradeCharts() {
    var source = document.getElementById("trade-charts-data");
    if (!source) return;
    series = JSON.parse(source.textContent);
    drawDrawdown();
    drawPnl();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("trade-filters");
    if (form) {
      form.addEventListener("submit", function (evt) {
        var via = evt.submitter;
        if (via && via.getAttribute("formaction")) return; // the CSV export: a download
        evt.preventDefault();
        var qs = query();
        window.history.replaceState(null, "", "/trades" + (qs ? "?" + qs : ""));
        document.body.dispatchEvent(new CustomEvent("trades-filtered"));
      });
    }
    document.querySelectorAll(".period-switch [data-period]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        period = btn.getAttribute("data-period");
        document.querySelectorAll(".period-switch [data-period]").forEach(function (b) {
          b.setAttribute("aria-pressed", b === btn ? "true" : "false");
        });
        if (series) drawPnl();
      });
    });
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        Object.keys(plots).forEach(function (id) {
          var el = document.getElementById(id);
          if (el) plots[id].setSize({ width: width(el), height: HEIGHT });
        });
      }).observe(document.body);
    }
  });

  document.addEventListener("htmx:afterSwap", function (evt) {
    var target = evt.detail.target && evt.detail.target.id;
    if (target === "trade-stats") drawTradeCharts();
    if (target === "trade-attribution") {
      delete plots["attribution-chart"]; // its element was replaced
      drawAttribution();
    }
  });
})();
