// LootCapital adaptive-pipeline page (/analysis): the price charts, and the refresh of the page.
//
// * one candlestick chart per symbol (TradingView Lightweight Charts, vendored), loaded from its
//   data-src (/ui/analysis/symbol/<symbol>/chart.json: bars in seconds UTC and the volume
//   profile's POC, VAH and VAL, drawn as horizontal price lines);
// * the engine's "status" SSE events (a bar was processed, the engine started or stopped) fire
//   "analysis-refresh" on <body> at most once per REFRESH_MS, and always after the last event,
//   so the partials (hx-trigger="analysis-refresh from:body") and the charts reload with the
//   engine's latest bar without re-rendering at the replay's pace.
// Times are UTC everywhere.
(function () {
  "use strict";

  var REFRESH_MS = 2000;
  var COLORS = {
    up: "#047857", down: "#b91c1c", text: "#334155", grid: "#e2e8f0", border: "#cbd5e1",
    poc: "#1d4ed8", va: "#7c3aed",
  };
  var LEVELS = [
    { key: "poc", title: "POC", color: COLORS.poc, width: 2 },
    { key: "vah", title: "VAH", color: COLORS.va, width: 1 },
    { key: "val", title: "VAL", color: COLORS.va, width: 1 },
  ];

  // "YYYY-MM-DD HH:MM UTC" for a time in seconds.
  function utcMinute(ts) {
    return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function PriceChart(el) {
    this.el = el;
    this.chart = null;
    this.candles = null;
    this.volume = null;
    this.lines = [];
    this.loading = false;
    this.again = false;
  }

  PriceChart.prototype.create = function (precision) {
    var L = window.LightweightCharts;
    this.el.textContent = "";
    this.chart = L.createChart(this.el, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: COLORS.text, fontSize: 11 },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      rightPriceScale: { borderColor: COLORS.border },
      timeScale: { borderColor: COLORS.border, timeVisible: true, secondsVisible: false },
      localization: { timeFormatter: utcMinute },
    });
    this.candles = this.chart.addSeries(L.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false,
      wickUpColor: COLORS.up, wickDownColor: COLORS.down,
      priceFormat: { type: "price", precision: precision, minMove: Math.pow(10, -precision) },
    });
    this.volume = this.chart.addSeries(L.HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "", lastValueVisible: false,
      priceLineVisible: false,
    });
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
  };

  PriceChart.prototype.draw = function (data) {
    if (!data.bars.length) {
      this.el.setAttribute("data-bars", "0");
      if (!this.chart) this.el.innerHTML = '<p class="muted pad chart-empty">No bars yet: start the engine.</p>';
      return;
    }
    var fresh = !this.chart;
    if (fresh) this.create(data.precision);
    this.candles.setData(data.bars.map(function (b) {
      return { time: b.time, open: b.open, high: b.high, low: b.low, close: b.close };
    }));
    this.volume.setData(data.bars.map(function (b) {
      var up = b.close >= b.open;
      return { time: b.time, value: b.volume, color: up ? "rgba(4, 120, 87, 0.3)" : "rgba(185, 28, 28, 0.3)" };
    }));
    var series = this.candles;
    this.lines.forEach(function (line) { series.removePriceLine(line); });
    this.lines = [];
    var levels = data.levels || {};
    var drawn = [];
    LEVELS.forEach(function (level) {
      var price = levels[level.key];
      if (price == null) return;
      this.lines.push(series.createPriceLine({
        price: price, color: level.color, lineWidth: level.width,
        lineStyle: window.LightweightCharts.LineStyle.Dashed, axisLabelVisible: true, title: level.title,
      }));
      drawn.push(level.key);
    }, this);
    if (fresh) this.chart.timeScale().fitContent();
    this.el.setAttribute("data-bars", String(data.bars.length));
    this.el.setAttribute("data-levels", drawn.join(" "));
  };

  // Reload the bars; a request made while one is under way runs once it is done.
  PriceChart.prototype.load = function () {
    var self = this;
    var src = this.el.getAttribute("data-src");
    if (!src || typeof window.LightweightCharts === "undefined") return;
    if (this.loading) { this.again = true; return; }
    this.loading = true;
    fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/"); return null; }
        if (!r.ok) throw new Error("chart " + src + ": HTTP " + r.status);
        return r.json();
      })
      .then(function (data) { if (data) self.draw(data); })
      .catch(function (err) { console.warn(err); })
      .then(function () {
        self.loading = false;
        if (self.again) { self.again = false; self.load(); }
      });
  };

  var charts = [];
  var timer = null;

  function refresh() {
    timer = null;
    document.body.dispatchEvent(new CustomEvent("analysis-refresh"));
    charts.forEach(function (chart) { chart.load(); });
  }

  // At most one refresh per REFRESH_MS; the last event before a quiet spell is always covered.
  function scheduleRefresh() {
    if (timer === null) timer = window.setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var els = document.querySelectorAll(".lwc-chart[data-src]");
    for (var i = 0; i < els.length; i++) {
      var chart = new PriceChart(els[i]);
      charts.push(chart);
      chart.load();
    }
  });

  document.addEventListener("htmx:sseMessage", function (evt) {
    if (evt.detail.type === "status") scheduleRefresh();
  });
})();
