// Job health: the scheduled jobs' last runs and overdue jobs (GET /health), live from `jobs`.

import { duration, esc, timeTag } from "./format.js";

export async function render(ctx) {
  const { api, live, main } = ctx;
  document.title = "Job health · CML Cloud Manager";
  main.innerHTML = `<h1>Job health</h1><p id="health-status" role="status"></p><div id="jobs"></div>`;
  let report = null;

  function show() {
    if (!report) return;
    const now = Date.now();
    main.querySelector("#health-status").innerHTML =
      report.status === "ok" ? `<span class="badge s-running">ok</span> every job ran on time` : `<span class="badge s-failed">degraded</span> a job is overdue or failed`;
    main.querySelector("#jobs").innerHTML = `
      <table><thead><tr><th scope="col">Job</th><th scope="col">Every</th><th scope="col">Last status</th><th scope="col">Last started</th>
        <th scope="col">Last finished</th><th scope="col">Overdue</th><th scope="col">Last summary</th></tr></thead>
      <tbody>${report.jobs
        .map(
          (j) => `<tr data-job="${esc(j.job)}"><td>${esc(j.job)}</td><td>${duration(j.interval_seconds * 1000)}</td>
            <td>${esc(j.last_status || (j.never_ran ? "never ran" : "—"))}</td><td>${timeTag(j.last_started_at, now)}</td>
            <td>${timeTag(j.last_finished_at, now)}</td><td>${j.overdue ? `<strong class="error-text">overdue</strong>` : "no"}</td>
            <td>${Object.entries(j.last_summary || {}).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join(", ") || "—"}</td></tr>`,
        )
        .join("")}</tbody></table>`;
  }

  const stop = live.subscribe("jobs", (message) => {
    if (message.type === "snapshot") report = message.data;
    else if (message.type === "job.finished" && report) {
      const jobs = report.jobs.map((j) => (j.job === message.data.job ? message.data : j));
      const healthy = jobs.every((j) => !j.overdue && j.last_status !== "failed");
      report = { ...report, jobs, status: healthy ? "ok" : "degraded" };
    }
    show();
  });
  const ticker = setInterval(show, 15_000);
  try {
    report = report || (await api.get("/health"));
    show();
  } catch (error) {
    main.insertAdjacentHTML("beforeend", `<p class="error" role="alert">${esc(error.message)}</p>`);
  }
  return () => {
    stop();
    clearInterval(ticker);
  };
}
