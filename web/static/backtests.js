// LootCapital backtests page (/backtests): the running backtest's progress, pushed, and the
// charts of the results and comparisons the page loads.
//
// * the WebSocket (/api/v1/ws, authenticated by the session cookie) pushes a "backtest" message
//   as a backtest's clock moves (its data is the body of POST /api/v1/backtests: id, status,
//   progress 0..1, error): the bar in #bt-job moves; when the job ends, the page loads its result
//   (/ui/backtests/{id}) into #bt-result and the list again ("bt-refresh"). A job started
//   elsewhere (the API, another tab) shows up too. Nothing is polled: after a dropped
//   connection the page reconnects and reloads the job's line (/ui/backtests/job).
// * every result or comparison swapped into the page gets its charts drawn
//   (web/static/backtest_charts.js).
(function () {
  "use strict";

  var ended = {}; // backtest id -> its result was loaded
  var following = null; // the running backtest the page follows, if any
  var pushed = {}; // backtest id -> {job: its latest pushed state, pushes: messages so far}

  function jobBox() { return document.getElementById("bt-job"); }

  function pct(progress) { return Math.round(progress * 100) + "%"; }

  function bar(job, pushes) {
    var box = jobBox();
    if (!box) return;
    var el = box.querySelector(".bt-job");
    if (!el || el.getAttribute("data-job-id") !== job.id) {
      box.innerHTML = "";
      el = document.createElement("div");
      el.className = "bt-job";
      el.setAttribute("data-job-id", job.id);
      el.innerHTML = '<span class="badge job-status"></span> <span class="mono small muted"></span>' +
        ' <progress max="1" value="0"></progress> <span class="bt-pct mono"></span>' +
        ' <span class="bt-job-error field-error"></span>';
      el.querySelector(".mono.small").textContent = job.id;
      box.appendChild(el);
    }
    el.setAttribute("data-pushes", String(pushes));
    el.setAttribute("data-status", job.status);
    el.setAttribute("data-progress", String(job.progress));
    var badge = el.querySelector(".badge");
    badge.className = "badge job-status " + job.status;
    badge.textContent = job.status;
    var progress = el.querySelector("progress");
    progress.value = job.progress;
    progress.textContent = pct(job.progress);
    el.querySelector(".bt-pct").textContent = pct(job.progress);
    el.querySelector(".bt-job-error").textContent = job.error || "";
  }

  function showResult(id) {
    var target = document.getElementById("bt-result");
    if (!target || !window.htmx) return;
    window.htmx.ajax("GET", "/ui/backtests/" + encodeURIComponent(id), {
      target: "#bt-result", swap: "innerHTML",
    });
  }

  function onBacktest(job) {
    var seen = pushed[job.id];
    pushed[job.id] = { job: job, pushes: (seen ? seen.pushes : 0) + 1 };
    bar(job, pushed[job.id].pushes);
    if (job.status === "running") following = job.id;
    if (job.status === "running" || ended[job.id]) return;
    ended[job.id] = true;
    document.body.dispatchEvent(new CustomEvent("bt-refresh"));
    showResult(job.id);
  }

  // After a dropped connection or lost messages ("lagged"): the job's line again, and the
  // result of the followed backtest if it ended meanwhile (its last message was lost with them).
  function resync() {
    var box = jobBox();
    if (box && window.htmx) {
      window.htmx.ajax("GET", "/ui/backtests/job", { target: "#bt-job", swap: "innerHTML" })
        .then(catchUp);
    }
    document.body.dispatchEvent(new CustomEvent("bt-refresh"));
  }

  function catchUp() {
    var id = following;
    if (!id || ended[id]) return;
    var el = document.querySelector("#bt-job .bt-job[data-job-id]");
    if (el && el.getAttribute("data-job-id") === id && el.getAttribute("data-status") === "running") return;
    ended[id] = true;
    document.body.dispatchEvent(new CustomEvent("bt-refresh"));
    showResult(id);
  }

  // The list is reloaded when a backtest ends or the socket resyncs: the backtests ticked for
  // comparison stay ticked (a reload under the user's hand would otherwise lose them).
  var ticked = [];
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "bt-list") {
      ticked = Array.prototype.map.call(
        document.querySelectorAll("#bt-list input[name=ids]:checked"), function (b) { return b.value; });
    }
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    var target = evt.detail.target;
    keepNewest(target);
    noteStarted(target);
    if (target && target.id === "bt-list") {
      target.querySelectorAll("input[name=ids]").forEach(function (b) {
        if (!b.disabled && ticked.indexOf(b.value) >= 0) b.checked = true;
      });
    }
    if (window.LootBacktestCharts) window.LootBacktestCharts.draw(target || document);
  });
  // The form's answer puts the started backtest's line into #bt-job (out of band): follow it.
  // A short backtest may have ended by then, its last message lost in a resync: show its result.
  function noteStarted(target) {
    var started = target && target.id === "bt-job" && target.querySelector(".bt-job[data-status=running]");
    if (started) following = started.getAttribute("data-job-id");
  }
  // A line the server rendered (the form's answer, a resync) may be older than the messages
  // already pushed for its job (a short backtest can end before the form's answer arrives):
  // the newest state wins, with the count of messages.
  function keepNewest(target) {
    var el = target && target.id === "bt-job" && target.querySelector(".bt-job[data-job-id]");
    var seen = el && pushed[el.getAttribute("data-job-id")];
    if (!seen) return;
    var status = el.getAttribute("data-status");
    var newer = seen.job.status !== "running" ? status === "running" || status === seen.job.status
      : status === "running" && seen.job.progress >= Number(el.getAttribute("data-progress") || 0);
    if (newer) bar(seen.job, seen.pushes);
  }
  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    var target = evt.detail.target;
    keepNewest(target);
    var job = target && target.id === "bt-job" && target.querySelector(".bt-job[data-job-id]");
    if (!job) return;
    following = job.getAttribute("data-job-id");
    if (job.getAttribute("data-status") !== "running") catchUp();
  });
  document.addEventListener("DOMContentLoaded", function () {
    window.LootCapital.followJobs("backtest", onBacktest, resync, jobBox);
  });
})();
