// LootCapital price chart page (/chart): one symbol on one timeframe, kept live.
//
// * candlesticks and a volume histogram (TradingView Lightweight Charts, vendored, drawn by
//   web/static/candles.js), with the library's own zoom (wheel, pinch) and pan (drag); the
//   trades' entry and exit markers; the open position's entry, stop, take-profit and
//   liquidation lines; the volume profile's POC, VAH and VAL when the strategy's volume
//   profile is on. Data: the chart's data-src
//   (/ui/chart/data?symbol=&timeframe=), times in seconds UTC.
// * the SSE events of the page's stream ("status" after a bar, "positions", "orders") make it
//   fetch the bars from its last one on (&since=<ms>) and the markers and lines again, at most
//   once per REFRESH_MS and always after the last event.
// * what is drawn is written on the chart element (data-candles, data-markers, data-lines,
//   data-levels, data-last-time) and in window.lootChart, for the browser tests.
// Times are UTC everywhere.
(function () {
  "use strict";

  var REFRESH_MS = 1000;
  var C = window.LootCandles;
  // Line kind -> how it is drawn (LineStyle: 0 solid, 1 dotted, 2 dashed).
  var LINES = {
    entry: { color: "#0f172a", style: 0, width: 1 },
    stop: { color: "#b91c1c", style: 2, width: 1 },
    take_profit: { color: "#047857", style: 2, width: 1 },
    liquidation: { color: "#b45309", style: 1, width: 2 },
    poc: { color: "#7c3aed", style: 2, width: 2, title: "POC" },
    vah: { color: "#a78bfa", style: 2, width: 1, title: "VAH" },
    val: { color: "#a78bfa", style: 2, width: 1, title: "VAL" },
  };
  var LEVELS = ["poc", "vah", "val"];
  var REASONS = { stop: "stop", take_profit: "TP", liquidation: "liq", time: "time", regime: "regime" };

  var utcMinute = C.utcMinute;

  function PriceChart(el) {
    this.el = el;
    this.src = el.getAttribute("data-src");
    this.chart = null;
    this.candles = null;
    this.volume = null;
    this.markers = null;
    this.lines = [];
    this.count = 0;
    this.firstTime = null; // seconds UTC
    this.lastTime = null;
    this.precision = 2;
    this.lastBar = null;
    this.loading = false;
    this.again = false;
    this.loads = 0;
  }

  PriceChart.prototype.create = function (precision) {
    var drawn = C.create(this.el, precision);
    this.precision = precision;
    this.chart = drawn.chart;
    this.candles = drawn.candles;
    this.volume = drawn.volume;
    this.markers = drawn.markers;
    var self = this;
    this.chart.subscribeCrosshairMove(function (param) {
      var bar = param && param.seriesData ? param.seriesData.get(self.candles) : null;
      var vol = bar ? param.seriesData.get(self.volume) : null;
      if (bar) self.legend(bar, vol ? vol.value : null); else self.legend(self.lastBar, null);
    });
  };

  // The legend under the chart: the bar under the cursor (else the last), and the position.
  PriceChart.prototype.legend = function (bar, volume) {
    var out = document.getElementById("chart-legend");
    if (!out || !bar) return;
    var p = this.precision;
    var vol = volume != null ? volume : bar.volume;
    out.textContent = utcMinute(bar.time) + "  O " + bar.open.toFixed(p) + "  H " + bar.high.toFixed(p) +
      "  L " + bar.low.toFixed(p) + "  C " + bar.close.toFixed(p) + (vol != null ? "  V " + vol.toLocaleString("en-US") : "") +
      (this.position ? "  ·  " + this.position : "");
  };

  // Every bar again (first load, or the engine's bars no longer follow the chart's).
  PriceChart.prototype.setBars = function (data) {
    if (!this.chart) this.create(data.precision);
    this.candles.setData(data.bars.map(C.candle));
    this.volume.setData(data.bars.map(C.volumeBar));
    this.count = data.bars.length;
    this.firstTime = data.bars[0].time;
  };

  // The bars from the chart's last one on: that bar again (unchanged) and the new ones.
  PriceChart.prototype.addBars = function (bars) {
    for (var i = 0; i < bars.length; i++) {
      if (bars[i].time > this.lastTime) this.count += 1;
      this.candles.update(C.candle(bars[i]));
      this.volume.update(C.volumeBar(bars[i]));
    }
  };

  PriceChart.prototype.draw = function (data, incremental) {
    var bars = data.bars;
    if (incremental && data.last_time != null && (!bars.length || bars[0].time !== this.lastTime)) {
      this.lastTime = null; // the run's bars changed under the chart: load them all
      this.load();
      return;
    }
    if (!bars.length && !this.chart) {
      this.el.innerHTML = '<p class="muted pad chart-empty">No closed bar yet: start the engine.</p>';
      this.expose(data, [], []);
      return;
    }
    if (incremental) this.addBars(bars); else this.setBars(data);
    if (bars.length) {
      this.lastTime = bars[bars.length - 1].time;
      this.lastBar = bars[bars.length - 1];
    }
    var first = this.firstTime, last = this.lastTime;
    var markers = data.markers.filter(function (m) { return m.time >= first && m.time <= last; });
    this.markers.setMarkers(markers.map(markerOf));
    var drawn = this.drawLines(data.lines, data.levels);
    this.position = positionText(data.position, this.precision);
    this.legend(this.lastBar, null);
    this.expose(data, markers, drawn);
  };

  function markerOf(m) {
    return C.marker(m, function (exit) { return REASONS[exit.reason] || ""; });
  }

  PriceChart.prototype.drawLines = function (lines, levels) {
    var series = this.candles;
    this.lines.forEach(function (line) { series.removePriceLine(line); });
    this.lines = [];
    var wanted = lines.map(function (l) { return { kind: l.kind, price: l.price, title: l.title }; });
    LEVELS.forEach(function (key) {
      if (levels && levels[key] != null) wanted.push({ kind: key, price: levels[key], title: LINES[key].title });
    });
    wanted.forEach(function (l) {
      var look = LINES[l.kind];
      this.lines.push(series.createPriceLine({
        price: l.price, color: look.color, lineWidth: look.width, lineStyle: look.style,
        axisLabelVisible: true, title: l.title,
      }));
    }, this);
    return wanted;
  };

  function positionText(p, precision) {
    if (!p) return "";
    var text = p.side + " " + p.qty + " @ " + Number(p.entry).toFixed(precision);
    if (p.unrealized != null) text += "  uPnL " + Number(p.unrealized).toFixed(2);
    return text;
  }

  PriceChart.prototype.expose = function (data, markers, lines) {
    var el = this.el;
    var levels = lines.filter(function (l) { return LEVELS.indexOf(l.kind) >= 0; });
    el.setAttribute("data-candles", String(this.count));
    el.setAttribute("data-markers", String(markers.length));
    el.setAttribute("data-lines", lines.map(function (l) { return l.kind; }).join(" "));
    el.setAttribute("data-levels", levels.map(function (l) { return l.kind; }).join(" "));
    el.setAttribute("data-last-time", this.lastTime == null ? "" : String(this.lastTime));
    window.lootChart = {
      symbol: data.symbol, timeframe: data.timeframe, candles: this.count, markers: markers.length,
      lines: lines.map(function (l) { return { kind: l.kind, price: l.price }; }),
      firstTime: this.firstTime, lastTime: this.lastTime, loads: this.loads,
    };
  };

  // Fetch the chart's data (from its last bar on once it has one); a request made while one is
  // under way runs once it is done.
  PriceChart.prototype.load = function () {
    var self = this;
    if (!this.src || typeof window.LightweightCharts === "undefined") return;
    if (this.loading) { this.again = true; return; }
    this.loading = true;
    var incremental = this.lastTime != null;
    var url = this.src + (incremental ? "&since=" + this.lastTime * 1000 : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/"); return null; }
        if (!r.ok) throw new Error("chart " + url + ": HTTP " + r.status);
        return r.json();
      })
      .then(function (data) {
        if (!data) return;
        self.loads += 1;
        self.draw(data, incremental);
      })
      .catch(function (err) { console.warn(err); })
      .then(function () {
        self.loading = false;
        if (self.again) { self.again = false; self.load(); }
      });
  };

  var chart = null;
  var timer = null;

  function refresh() {
    timer = null;
    if (chart) chart.load();
  }

  function scheduleRefresh() {
    if (timer === null) timer = window.setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("price-chart");
    if (!el) return;
    chart = new PriceChart(el);
    chart.load();
    var select = document.getElementById("chart-symbol-select");
    if (select) {
      select.addEventListener("change", function () {
        var tf = el.getAttribute("data-timeframe");
        window.location.assign("/chart/" + encodeURIComponent(select.value) + "?timeframe=" + encodeURIComponent(tf));
      });
    }
    document.getElementById("chart-fit").addEventListener("click", function () {
      if (chart.chart) chart.chart.timeScale().fitContent();
    });
    document.getElementById("chart-latest").addEventListener("click", function () {
      if (chart.chart) chart.chart.timeScale().scrollToRealTime();
    });
  });

  document.addEventListener("htmx:sseMessage", function (evt) {
    var type = evt.detail.type;
    if (type === "status" || type === "positions" || type === "orders") scheduleRefresh();
  });
  document.addEventListener("htmx:sseOpen", scheduleRefresh);
})();
