// LootCapital AI signal page (/ai): the refresh of the signal partials and the live training
// progress.
//
// * the engine's "status" SSE events (a bar was processed, the engine started or stopped) fire
//   "ai-refresh" on <body> at most once per REFRESH_MS, and always after the last event, so the
//   per-symbol calls, the last ML signals and the strategy's own calls (hx-trigger="ai-refresh
//   from:body") reload with the engine's latest bar without re-rendering at the replay's pace;
// * the WebSocket (/api/v1/ws, authenticated by the session cookie) pushes a "training" message
//   at every step of a training job (its data is the body of GET /api/v1/models/train/{id}): the
//   job's card in #training-jobs moves its progress bar; a job the page has no card for (started
//   elsewhere, or before the form's answer arrived) gets one from /ui/ai/train/{id}; a job that
//   ends is loaded again from there (the result or the error, rendered by the server) and the
//   models are reloaded ("ai-models-refresh"). Nothing is polled: after a dropped connection the
//   page reconnects and reloads the cards of the jobs it showed running.
(function () {
  "use strict";

  var REFRESH_MS = 2000;

  var timer = null;

  function refresh() {
    timer = null;
    document.body.dispatchEvent(new CustomEvent("ai-refresh"));
  }

  // At most one refresh per REFRESH_MS; the last event before a quiet spell is always covered.
  function scheduleRefresh() {
    if (timer === null) timer = window.setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("htmx:sseMessage", function (evt) {
    if (evt.detail.type === "status") scheduleRefresh();
  });

  // -- training jobs ------------------------------------------------------------------------

  var pushed = {}; // job id -> the latest state pushed over the WebSocket
  var loading = {}; // job id -> a card request is under way
  var again = {}; // job id -> load the card once more when the request under way ends
  var finished = {}; // job id -> the models were reloaded for it

  function list() { return document.getElementById("training-jobs"); }

  function cardsOf(id) {
    var jobs = list();
    if (!jobs) return [];
    return Array.prototype.filter.call(jobs.querySelectorAll(".job[data-job-id]"), function (el) {
      return el.getAttribute("data-job-id") === id;
    });
  }

  // One card per job: the most recently updated one stays.
  function tidy(id) {
    var cards = cardsOf(id);
    if (cards.length < 2) return cards[0] || null;
    cards.sort(function (a, b) {
      return Number(b.getAttribute("data-updated-ms")) - Number(a.getAttribute("data-updated-ms"));
    });
    for (var i = 1; i < cards.length; i++) cards[i].remove();
    return cards[0];
  }

  // Move a running card to a pushed state (never back to an older one).
  function apply(card, job) {
    if (card.getAttribute("data-status") !== "running") return;
    if (Number(card.getAttribute("data-updated-ms")) > job.updated_ms) return;
    card.setAttribute("data-updated-ms", String(job.updated_ms));
    card.setAttribute("data-progress", String(job.progress));
    card.setAttribute("data-pushes", String(Number(card.getAttribute("data-pushes") || 0) + 1));
    var bar = card.querySelector("progress");
    if (bar) { bar.value = job.progress; bar.textContent = Math.round(job.progress * 100) + "%"; }
    var pct = card.querySelector(".job-pct");
    if (pct) pct.textContent = Math.round(job.progress * 100) + "%";
    var message = card.querySelector(".job-message");
    if (message) message.textContent = job.message;
  }

  function ended(id, card) {
    var status = card.getAttribute("data-status");
    if (status === "running" || finished[id]) return;
    finished[id] = true;
    if (status === "done") document.body.dispatchEvent(new CustomEvent("ai-models-refresh"));
  }

  // The server's card of job `id`, in place of the page's (or first in the list).
  function load(id) {
    var jobs = list();
    if (!jobs) return;
    if (loading[id]) { again[id] = true; return; }
    loading[id] = true;
    fetch("/ui/ai/train/" + encodeURIComponent(id), {
      credentials: "same-origin", headers: { Accept: "text/html" },
    })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/"); return null; }
        if (!r.ok) throw new Error("training job " + id + ": HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        var template = document.createElement("template");
        template.innerHTML = html.trim();
        var fresh = template.content.firstElementChild;
        if (!fresh) return;
        var old = tidy(id);
        if (old) old.replaceWith(fresh); else jobs.insertBefore(fresh, jobs.firstChild);
        if (window.htmx) window.htmx.process(fresh);
        if (pushed[id]) apply(fresh, pushed[id]);
        ended(id, fresh);
      })
      .catch(function (err) { console.warn(err); })
      .then(function () {
        loading[id] = false;
        if (again[id]) { again[id] = false; load(id); }
      });
  }

  function onTraining(job) {
    var id = job.job_id;
    var last = pushed[id];
    if (!last || last.updated_ms <= job.updated_ms) pushed[id] = job;
    var card = tidy(id);
    if (job.status !== "running") { load(id); return; }
    if (card) apply(card, job); else load(id);
  }

  // The form's answer adds the new job's card out of band, and the job list loads once: keep
  // one card per job, moved to what was pushed meanwhile.
  function reconcile() {
    Object.keys(pushed).forEach(function (id) {
      var card = tidy(id);
      if (!card) return;
      apply(card, pushed[id]);
      if (pushed[id].status !== "running" && card.getAttribute("data-status") === "running") load(id);
    });
  }

  document.addEventListener("htmx:oobAfterSwap", reconcile);
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "training-jobs") reconcile();
  });

  function resync() {
    var jobs = list();
    if (!jobs) return;
    jobs.querySelectorAll('.job[data-status="running"]').forEach(function (card) {
      load(card.getAttribute("data-job-id"));
    });
  }

  // -- the WebSocket ------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", function () {
    window.LootCapital.followJobs("training", onTraining, resync, list);
  });
})();
