// LootCapital control panel: the bits HTMX does not do by itself.
//
// * the equity chart (uPlot): loaded from /ui/equity.json, then extended by the SSE "equity"
//   events, which are kept from being swapped into the page as HTML;
// * the live-connection badge, the Start/Stop buttons' enabled state, and a return to the login
//   page when the session is no longer valid (401);
// * LootCapital.followJobs: the WebSocket the pages with background jobs (/ai's trainings, the
//   backtests) follow them on, reconnecting with backoff.
// Times are UTC everywhere.
(function () {
  "use strict";

  var MAX_POINTS = 20000; // points kept in the browser; older ones scroll off the chart
  var CHART_HEIGHT = 260;

  function fmtMoney(v) {
    return v == null ? "—" : v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  // "YYYY-MM-DD HH:MM" in UTC for a time in seconds.
  function utcMinute(ts) {
    return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ");
  }

  // Axis labels in UTC, 24 h: "HH:MM", with "MM-DD" under the first tick of each day.
  function timeTicks(u, splits, axisIdx, space, incr) {
    var prevDay = null;
    return splits.map(function (ts) {
      var stamp = utcMinute(ts), day = stamp.slice(0, 10);
      var label = incr >= 86400 ? day : day !== prevDay ? stamp.slice(11) + "\n" + day.slice(5) : stamp.slice(11);
      prevDay = day;
      return label;
    });
  }

  // Y range hugging the data (uPlot's default spans 0..2x for a flat line).
  function equityRange(u, min, max) {
    if (min == null || max == null) return [0, 1];
    var pad = max > min ? (max - min) * 0.08 : Math.max(Math.abs(min) * 0.005, 1);
    return [min - pad, max + pad];
  }

  function EquityChart(el) {
    this.el = el;
    this.t = []; // seconds UTC
    this.v = []; // equity, quote currency
    this.plot = null;
    this.drawQueued = false;
    this.loading = null;
    this.reloadQueued = false;
  }

  EquityChart.prototype.options = function () {
    return {
      width: Math.max(200, this.el.clientWidth),
      height: CHART_HEIGHT,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true }, y: { range: equityRange } },
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      series: [
        { label: "Time", value: function (u, ts) { return ts == null ? "—" : utcMinute(ts) + " UTC"; } },
        {
          label: "Equity",
          stroke: "#1d4ed8",
          width: 1.5,
          fill: "rgba(29, 78, 216, 0.07)",
          value: function (u, v) { return fmtMoney(v); },
        },
      ],
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" }, values: timeTicks },
        {
          stroke: "#475569",
          size: 72,
          grid: { stroke: "#e2e8f0" },
          ticks: { stroke: "#cbd5e1" },
          values: function (u, vals) {
            return vals.map(function (v) { return v.toLocaleString("en-US"); });
          },
        },
      ],
    };
  };

  // Replace the series with the stored one, keeping live points newer than it.
  EquityChart.prototype.load = function () {
    var self = this;
    var src = this.el.getAttribute("data-src");
    if (!src) return;
    if (this.loading) { this.reloadQueued = true; return; }
    this.loading = fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/"); return []; }
        if (!r.ok) throw new Error("equity: HTTP " + r.status);
        return r.json();
      })
      .then(function (points) {
        var t = [], v = [];
        for (var i = 0; i < points.length; i++) { t.push(points[i][0] / 1000); v.push(points[i][1]); }
        var last = t.length ? t[t.length - 1] : -Infinity;
        for (var j = 0; j < self.t.length; j++) {
          if (self.t[j] > last) { t.push(self.t[j]); v.push(self.v[j]); }
        }
        self.t = t; self.v = v;
        self.queueDraw();
      })
      .catch(function (err) { console.warn(err); })
      .then(function () {
        self.loading = null;
        if (self.reloadQueued) { self.reloadQueued = false; self.load(); }
      });
  };

  EquityChart.prototype.append = function (timeMs, equity) {
    var ts = timeMs / 1000, n = this.t.length;
    if (n && ts < this.t[n - 1]) return; // already have it (stream reconnected)
    if (n && ts === this.t[n - 1]) { this.v[n - 1] = equity; }
    else { this.t.push(ts); this.v.push(equity); }
    if (this.t.length > MAX_POINTS) {
      var drop = this.t.length - MAX_POINTS;
      this.t.splice(0, drop); this.v.splice(0, drop);
    }
    this.queueDraw();
  };

  // At most one redraw per frame however fast points arrive.
  EquityChart.prototype.queueDraw = function () {
    var self = this;
    if (this.drawQueued) return;
    this.drawQueued = true;
    window.requestAnimationFrame(function () { self.drawQueued = false; self.draw(); });
  };

  EquityChart.prototype.draw = function () {
    if (!this.t.length || typeof uPlot === "undefined") return;
    var data = [this.t.slice(), this.v.slice()];
    if (!this.plot) {
      this.el.textContent = "";
      this.plot = new uPlot(this.options(), data, this.el);
      var self = this;
      if (window.ResizeObserver) {
        new ResizeObserver(function () {
          self.plot.setSize({ width: Math.max(200, self.el.clientWidth), height: CHART_HEIGHT });
        }).observe(this.el);
      }
    } else {
      this.plot.setData(data);
    }
    // Unless the user is hovering a point, the legend shows the latest equity.
    if (this.plot.cursor.idx == null) this.plot.setLegend({ idx: data[0].length - 1 });
  };

  var chart = null;

  function syncEngineButtons() {
    var kpis = document.querySelector("#status .kpis");
    var start = document.getElementById("engine-start");
    var stop = document.getElementById("engine-stop");
    if (!kpis || !start || !stop) return;
    var running = kpis.getAttribute("data-running") === "true";
    start.disabled = running;
    stop.disabled = !running;
  }

  function setConnection(state, text) {
    var el = document.getElementById("conn");
    if (!el) return;
    el.className = "conn " + state;
    el.textContent = text;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("equity-chart");
    if (el) { chart = new EquityChart(el); chart.load(); }
  });

  // The "equity" SSE event carries JSON for the chart, not HTML: take it and cancel the swap.
  // "resync" (the server dropped messages for this page) reloads the whole series.
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var type = evt.detail.type;
    if (type !== "equity" && type !== "resync") return;
    evt.preventDefault();
    if (!chart) return;
    if (type === "resync") { chart.load(); return; }
    try {
      var point = JSON.parse(evt.detail.data);
      chart.append(point.time, point.equity);
    } catch (err) { console.warn("bad equity event", err); }
  });

  document.addEventListener("htmx:sseMessage", function (evt) {
    if (evt.detail.type === "status") syncEngineButtons();
  });
  document.addEventListener("htmx:afterSwap", syncEngineButtons);

  document.addEventListener("htmx:sseOpen", function () {
    setConnection("live", "live");
    if (chart) chart.load(); // catch up on points missed while disconnected
  });
  document.addEventListener("htmx:sseError", function () { setConnection("down", "reconnecting…"); });

  document.addEventListener("htmx:responseError", function (evt) {
    if (evt.detail.xhr && evt.detail.xhr.status === 401) window.location.assign("/");
  });
})();

// Follow the messages of one type on the API's WebSocket (/api/v1/ws, the session cookie
// authenticates it): handle(message.data) for each; after a reconnect, and on a "lagged" notice
// (messages were dropped), resync() reads the state again. marker() is the element whose
// data-ws attribute says "open" or "closed" (tests and styles read it). Reconnects wait 1 s,
// doubling up to 30 s.
window.LootCapital = window.LootCapital || {};
window.LootCapital.followJobs = function (type, handle, resync, marker) {
  "use strict";
  var RETRY_MS = 1000;
  var MAX_RETRY_MS = 30000;
  var delay = RETRY_MS;
  var opened = false;

  function mark(state) {
    var el = marker();
    if (el) el.setAttribute("data-ws", state);
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/api/v1/ws");
    socket.addEventListener("open", function () {
      delay = RETRY_MS;
      mark("open");
      if (opened) resync(); // messages may have been missed while disconnected
      opened = true;
    });
    socket.addEventListener("message", function (evt) {
      var message;
      try { message = JSON.parse(evt.data); } catch (err) { return; }
      if (message.type === type) handle(message.data);
      else if (message.type === "lagged") resync();
    });
    socket.addEventListener("close", function () {
      mark("closed");
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    });
  }

  connect();
};
