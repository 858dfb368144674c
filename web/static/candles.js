// LootCapital candlestick charts (TradingView Lightweight Charts, vendored), shared by the price
// chart page (/chart, web/static/chart.js) and the backtests' results (/backtests,
// web/static/backtest_charts.js): the chart with its candles, its volume histogram under them and
// its trade markers, with the library's own zoom (wheel, pinch) and pan (drag).
//
// window.LootCandles:
// * create(el, precision): a chart in `el` (emptied first), prices with `precision` decimals;
//   returns { chart, candles, volume, markers } (the chart, its candlestick and volume series
//   and the candles' markers plugin).
// * candle(bar), volumeBar(bar): a bar of the server's JSON ({time: s, open, high, low, close,
//   volume}) as the candlestick series and the volume histogram take it.
// * marker(m, exitText): a trade marker of the server's JSON ({time: s, price, side: buy|sell,
//   kind: entry|exit, trade, reason}) as the markers plugin takes it: an entry is an arrow
//   (up for a buy, down for a sell; "open" beside an open position's), an exit a circle with
//   exitText(m) beside it.
// * utcMinute(s): a time in seconds UTC as "YYYY-MM-DD HH:MM UTC".
// Times are UTC everywhere.
(function () {
  "use strict";

  var COLORS = {
    up: "#047857", down: "#b91c1c", text: "#334155", grid: "#e2e8f0", border: "#cbd5e1",
    exit: "#1d4ed8", upVol: "rgba(4, 120, 87, 0.3)", downVol: "rgba(185, 28, 28, 0.3)",
  };

  function utcMinute(ts) {
    return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function create(el, precision) {
    var L = window.LightweightCharts;
    el.textContent = "";
    var chart = L.createChart(el, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: COLORS.text, fontSize: 11 },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      rightPriceScale: { borderColor: COLORS.border },
      timeScale: {
        borderColor: COLORS.border, timeVisible: true, secondsVisible: false, minBarSpacing: 0.1,
      },
      localization: { timeFormatter: utcMinute },
    });
    var candles = chart.addSeries(L.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false,
      wickUpColor: COLORS.up, wickDownColor: COLORS.down,
      priceFormat: { type: "price", precision: precision, minMove: Math.pow(10, -precision) },
    });
    var volume = chart.addSeries(L.HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "", lastValueVisible: false,
      priceLineVisible: false,
    });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    return { chart: chart, candles: candles, volume: volume, markers: L.createSeriesMarkers(candles, []) };
  }

  function candle(b) {
    return { time: b.time, open: b.open, high: b.high, low: b.low, close: b.close };
  }

  function volumeBar(b) {
    return { time: b.time, value: b.volume, color: b.close >= b.open ? COLORS.upVol : COLORS.downVol };
  }

  function marker(m, exitText) {
    var buy = m.side === "buy";
    if (m.kind === "entry") {
      return {
        time: m.time, price: m.price, position: buy ? "atPriceTop" : "atPriceBottom",
        shape: buy ? "arrowUp" : "arrowDown", color: buy ? COLORS.up : COLORS.down,
        text: m.trade ? "" : "open",
      };
    }
    return {
      time: m.time, price: m.price, position: "atPriceMiddle", shape: "circle", color: COLORS.exit,
      text: exitText(m),
    };
  }

  window.LootCandles = {
    create: create, candle: candle, volumeBar: volumeBar, marker: marker, utcMinute: utcMinute,
  };
})();
