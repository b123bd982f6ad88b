// Jobs (admin): the scheduled jobs with their last and next runs, health and pause state (GET /jobs);
// run one now, pause or resume its schedule. Refreshed when a run finishes (the `jobs` topic).

import { duration, esc, timeTag } from "./format.js";
import { runAction, showError } from "./ui.js";

export async function render(ctx) {
  const { api, live, main, session } = ctx;
  document.title = "Jobs · CML Cloud Manager";
  if (!session.can("admin")) {
    main.innerHTML = `<h1>Jobs</h1><p>Running and pausing jobs needs the admin role; you are ${esc(session.role || "without a role")}. <a href="#/health">Job health</a> is open to everyone.</p>`;
    return null;
  }
  main.innerHTML = `
    <h1>Jobs</h1>
    <p class="muted">Run a job now (never beside another run of it: a run in progress answers 409), or pause its schedule.</p>
    <p id="jobs-error" class="error" role="alert" hidden></p>
    <div id="jobs-table"></div>`;
  const $ = (s) => main.querySelector(s);
  let jobs = [];

  function row(j, now) {
    const state = j.paused
      ? `<span class="badge s-stopped">paused</span> <small>by ${esc(j.paused_by || "—")} ${timeTag(j.paused_changed_at, now)}</small>`
      : `<span class="badge s-running">scheduled</span>`;
    const health = j.overdue ? `<strong class="error-text">overdue</strong>` : j.last_status === "failed" ? `<strong class="error-text">failed</strong>` : "ok";
    const last = j.last_started_at
      ? `${esc(j.last_status || "—")} ${timeTag(j.last_started_at, now)} <small>(${esc(j.last_trigger || "—")}${j.last_triggered_by ? ` by ${esc(j.last_triggered_by)}` : ""})</small>`
      : "never ran";
    return `<tr data-job="${esc(j.job)}">
      <th scope="row">${esc(j.job)}</th>
      <td>${duration(j.interval_seconds * 1000)}</td>
      <td>${state}</td>
      <td>${esc(j.schedule_state || "no schedule")}</td>
      <td>${last}</td>
      <td>${timeTag(j.last_finished_at, now)}</td>
      <td>${j.next_run_at ? timeTag(j.next_run_at, now) : "—"}</td>
      <td>${health}</td>
      <td>${j.skipped_runs} ${j.last_skip_reason ? `<small>(last: ${esc(j.last_skip_reason)})</small>` : ""}</td>
      <td class="actions">
        <button type="button" data-do="run" data-job="${esc(j.job)}">Run now</button>
        <button type="button" data-do="${j.paused ? "resume" : "pause"}" data-job="${esc(j.job)}">${j.paused ? "Resume" : "Pause"}</button>
      </td></tr>`;
  }

  function show() {
    const now = Date.now();
    $("#jobs-table").innerHTML = `
      <table><thead><tr><th scope="col">Job</th><th scope="col">Every</th><th scope="col">Schedule</th><th scope="col">EventBridge</th>
        <th scope="col">Last run</th><th scope="col">Finished</th><th scope="col">Next run</th><th scope="col">Health</th>
        <th scope="col">Skipped</th><th scope="col">Actions</th></tr></thead>
      <tbody>${jobs.map((j) => row(j, now)).join("")}</tbody></table>`;
  }

  async function load() {
    try {
      jobs = (await api.get("/jobs")).items;
      showError($("#jobs-error"), null);
      show();
    } catch (error) {
      showError($("#jobs-error"), error);
    }
  }

  $("#jobs-table").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-do]");
    if (!button) return;
    const { job } = button.dataset;
    const action = button.dataset.do;
    const done = await runAction(button, $("#jobs-error"), () => api.post(`/jobs/${encodeURIComponent(job)}/${action}`));
    if (done === undefined) return;
    await load();
  });

  const stop = live.subscribe("jobs", (message) => {
    if (message.type === "job.finished") load();
  });
  const ticker = setInterval(show, 15_000);
  await load();
  return () => {
    stop();
    clearInterval(ticker);
  };
}
