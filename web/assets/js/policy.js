// Fleet policy: hours and money the idle policy and schedules saved (GET /savings), and the
// schedules (office hours): what each wants now and next, who follows it; admins create, edit
// (JSON, version-guarded: a 409 reloads and says so), delete, and "keep running until" overrides.

import { absolute, count, esc, timeTag } from "./format.js";
import { runAction, showError, statusBadge, confirmDialog } from "./ui.js";

const usd = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", maximumFractionDigits: 2 });
const hours = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

const EXAMPLE = {
  name: "office-hours",
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
  periods: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "08:00", end: "18:00" }],
  mode: "start_stop",
  holidays: [],
  overrides: [],
  worker_ids: [],
  tags: { Schedule: "office-hours" },
  enforced: false,
  enabled: true,
};

function money(value) {
  return value === null || value === undefined ? "—" : usd.format(value);
}

function savingsHtml(report) {
  const f = report.fleet;
  const rows = report.workers
    .filter((r) => r.savings.hours > 0 || r.savings.stopped_by_policy_now)
    .slice(0, 200)
    .map(
      (r) => `<tr><td><a href="#/workers/${encodeURIComponent(r.worker_id)}">${esc(r.name)}</a></td><td>${statusBadge(r.status)}</td>
        <td>${esc(r.region)}</td><td>${esc(r.instance_type || "—")}</td>
        <td class="num">${hours.format(r.savings.idle_hours)}</td><td class="num">${hours.format(r.savings.schedule_hours)}</td>
        <td class="num">${money(r.savings.usd_per_hour)}</td><td class="num">${money(r.savings.usd_avoided)}</td>
        <td>${esc(r.savings.stopped_by_policy_now || "—")}</td></tr>`,
    )
    .join("");
  return `
    <dl class="facts" id="fleet-savings">
      <dt>Hours stopped by policy</dt><dd>${hours.format(f.hours)} h (idle ${hours.format(f.idle_hours)} h, schedules ${hours.format(f.schedule_hours)} h)</dd>
      <dt>On-demand price avoided</dt><dd><strong>${money(f.usd_avoided)}</strong>${f.unpriced_hours ? ` (plus ${hours.format(f.unpriced_hours)} h of instance types the price table lacks)` : ""}</dd>
      <dt>Stopped by a policy now</dt><dd>${count(f.stopped_by_policy_now)} workers, ${money(f.usd_per_hour_now)} per hour</dd>
    </dl>
    ${
      rows
        ? `<div class="table-wrap"><table id="savings-table"><thead><tr><th scope="col">Worker</th><th scope="col">Status</th><th scope="col">Region</th>
            <th scope="col">Type</th><th scope="col">Idle h</th><th scope="col">Schedule h</th><th scope="col">Price/h</th>
            <th scope="col">Avoided</th><th scope="col">Stopped by now</th></tr></thead><tbody>${rows}</tbody></table></div>`
        : `<p class="muted">No worker has been stopped by a policy yet.</p>`
    }
    <p class="muted">Prices come from the settings' <code>on_demand_prices</code> (instance type × region, USD per hour).</p>`;
}

function scheduleHtml(s, admin, now) {
  const periods = s.periods.map((p) => `${p.days.join(", ")} ${p.start}–${p.end}`).join("; ") || "none (always stopped)";
  const who = [s.worker_ids.length ? `ids: ${s.worker_ids.join(", ")}` : "", Object.keys(s.tags).length ? `tags: ${Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join(", ")}` : ""]
    .filter(Boolean)
    .join("; ");
  const overrides = s.overrides
    .map((o) => `${o.state} until ${esc(o.until)}${o.worker_ids.length ? ` (${o.worker_ids.length} workers)` : ""}${o.note ? `: ${esc(o.note)}` : ""}`)
    .join("<br>");
  return `
    <section class="panel schedule" data-schedule="${esc(s.name)}" aria-labelledby="s-${esc(s.name)}">
      <h3 id="s-${esc(s.name)}">${esc(s.name)} ${s.enabled ? "" : `<span class="muted">(disabled)</span>`}</h3>
      ${s.description ? `<p>${esc(s.description)}</p>` : ""}
      <dl class="facts">
        <dt>Wants now</dt><dd>${statusBadge(s.state.desired)} ${esc(s.state.reason)}</dd>
        <dt>Next change</dt><dd>${s.state.next_change_at ? `${timeTag(s.state.next_change_at, now)} (${esc(absolute(s.state.next_change_at))})` : "none within two weeks"}</dd>
        <dt>Time zone</dt><dd>${esc(s.timezone)}</dd>
        <dt>Periods</dt><dd>${esc(periods)}</dd>
        <dt>Mode</dt><dd>${s.mode === "stop_only" ? "stop only" : "start and stop"}${s.enforced ? ", enforced (undoes users' starts)" : ""}</dd>
        <dt>Holidays</dt><dd>${esc(s.holidays.join(", ") || "—")}</dd>
        <dt>Overrides</dt><dd>${overrides || "—"}</dd>
        <dt>Assigned by</dt><dd>${esc(who || "nobody yet")}</dd>
        <dt>Followers</dt><dd>${s.followers.length} active workers</dd>
      </dl>
      ${
        admin
          ? `<form class="inline override-form" aria-label="Override ${esc(s.name)}">
               <label>Keep <select name="state"><option value="running">running</option><option value="stopped">stopped</option></select></label>
               <label>until <input name="until" type="time" required></label>
               <button type="submit">Override</button>
             </form>
             <div class="buttons"><button type="button" data-edit="${esc(s.name)}">Edit…</button>
               <button type="button" class="danger" data-delete="${esc(s.name)}">Delete…</button></div>
             <p class="error" role="alert" hidden></p>`
          : ""
      }
    </section>`;
}

export async function render(ctx) {
  const { api, main, session } = ctx;
  document.title = "Schedules and savings · CML Cloud Manager";
  const admin = session.can("admin");
  main.innerHTML = `
    <h1>Schedules and savings</h1>
    <p id="policy-notice" class="notice" role="status" hidden></p>
    <section class="panel" aria-labelledby="savings-title">
      <h2 id="savings-title">Saved by the policies</h2>
      <div id="savings"><p class="muted">Loading…</p></div>
    </section>
    <section aria-labelledby="schedules-title">
      <h2 id="schedules-title">Schedules (office hours)</h2>
      <p class="muted">Outside its periods a worker that follows a schedule is stopped (and started inside them, unless
        the schedule is stop-only), by the collection run. A schedule acts when what it wants changes, so a user's
        start after hours stands; after a user's resume or start no policy stops the worker for the settings'
        <code>snooze_after_resume_minutes</code>.</p>
      ${
        admin
          ? `<form id="schedule-form" class="panel">
               <label for="schedule-json">Schedule (JSON). To edit one, press its Edit button.</label>
               <textarea id="schedule-json" name="schedule" rows="14" spellcheck="false"></textarea>
               <input type="hidden" name="editing" value="">
               <button type="submit" class="primary">Create schedule</button>
               <p id="schedule-error" class="error" role="alert" hidden></p>
             </form>`
          : ""
      }
      <div id="schedules"><p class="muted">Loading…</p></div>
    </section>`;
  const $ = (selector) => main.querySelector(selector);
  let schedules = [];

  function say(text) {
    $("#policy-notice").textContent = text;
    $("#policy-notice").hidden = !text;
  }

  async function loadSavings() {
    try {
      $("#savings").innerHTML = savingsHtml(await api.get("/savings"));
    } catch (error) {
      $("#savings").innerHTML = `<p class="error" role="alert">${esc(error.message)}</p>`;
    }
  }

  async function loadSchedules() {
    try {
      schedules = (await api.get("/schedules")).items;
      const now = Date.now();
      $("#schedules").innerHTML = schedules.length
        ? schedules.map((s) => scheduleHtml(s, admin, now)).join("")
        : `<p class="muted">No schedules yet.</p>`;
    } catch (error) {
      $("#schedules").innerHTML = `<p class="error" role="alert">${esc(error.message)}</p>`;
    }
  }

  const form = $("#schedule-form");
  function resetForm() {
    if (!form) return;
    form.elements.schedule.value = JSON.stringify(EXAMPLE, null, 2);
    form.elements.editing.value = "";
    form.querySelector("button[type=submit]").textContent = "Create schedule";
  }
  if (form) {
    resetForm();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const slot = $("#schedule-error");
      let body;
      try {
        body = JSON.parse(form.elements.schedule.value);
      } catch (error) {
        showError(slot, new Error(`not JSON: ${error.message}`));
        return;
      }
      const editing = form.elements.editing.value;
      const done = await runAction(form.querySelector("button[type=submit]"), slot, async () => {
        try {
          if (editing) {
            const { name, state, followers, ...content } = body;
            await api.put(`/schedules/${encodeURIComponent(editing)}`, content);
          } else {
            await api.post("/schedules", body);
          }
        } catch (error) {
          if (error.status === 409 && editing) {
            await loadSchedules();
            say(`Someone else changed ${editing} meanwhile, so it was reloaded; edit it again. (${error.message})`);
            resetForm();
            return false;
          }
          throw error;
        }
        return true;
      });
      if (done) {
        say(editing ? `Schedule ${editing} saved.` : "Schedule created.");
        resetForm();
        await loadSchedules();
      }
    });
  }

  $("#schedules").addEventListener("click", async (event) => {
    const edit = event.target.closest("button[data-edit]");
    const remove = event.target.closest("button[data-delete]");
    if (edit && form) {
      const s = schedules.find((x) => x.name === edit.dataset.edit);
      const { state, followers, ...content } = s;
      form.elements.schedule.value = JSON.stringify(content, null, 2);
      form.elements.editing.value = s.name;
      form.querySelector("button[type=submit]").textContent = `Save ${s.name}`;
      form.elements.schedule.focus();
    }
    if (remove) {
      const name = remove.dataset.delete;
      if (!(await confirmDialog(`Delete schedule ${name}? Its workers are no longer started or stopped by it.`, { confirmLabel: "Delete", danger: true }))) return;
      const slot = remove.closest("section").querySelector(".error");
      await runAction(remove, slot, async () => {
        await api.delete(`/schedules/${encodeURIComponent(name)}`);
        say(`Schedule ${name} deleted.`);
        await loadSchedules();
      });
    }
  });
  $("#schedules").addEventListener("submit", async (event) => {
    const overrideForm = event.target.closest("form.override-form");
    if (!overrideForm) return;
    event.preventDefault();
    const name = overrideForm.closest("section").dataset.schedule;
    const slot = overrideForm.closest("section").querySelector(".error");
    await runAction(overrideForm.querySelector("button"), slot, async () => {
      await api.post(`/schedules/${encodeURIComponent(name)}/overrides`, {
        state: overrideForm.elements.state.value,
        until: overrideForm.elements.until.value,
      });
      say(`${name}: ${overrideForm.elements.state.value} until ${overrideForm.elements.until.value} today.`);
      await loadSchedules();
    });
  });

  await Promise.all([loadSavings(), loadSchedules()]);
  const ticker = setInterval(loadSavings, 60_000);
  return () => clearInterval(ticker);
}
