// Worker view: one worker live from `workers/<id>` and its labs from `workers/<id>/labs`; charts,
// actions by role (each with its error beside it), licence, tags, idle detection and a timeline.

import { drawCharts } from "./charts.js";
import { count, esc, gib, ms, percent, timeTag, yesNo } from "./format.js";
import { confirmDialog, runAction, showError, statusBadge } from "./ui.js";
import { ACTIVITY_SOURCES, idleCountdown, licenceText, newer, readableReason } from "./workers.js";

const CAUSES = { user: "by a user", saga: "by provisioning", collector: "observed by collection", idle_policy: "by the idle policy", ec2_event: "by an EC2 event", reconciler: "by the reconciler", schedule: "by a schedule" };

/** One timeline line for a live event (null when the event is not worth a line). */
function describe(message) {
  const d = message.detail || {};
  const w = message.data || {};
  switch (message.type) {
    case "worker.created":
      return { kind: "info", text: `Worker created (${w.status})` };
    case "worker.status_changed": {
      const cause = d.cause || {};
      const who = [CAUSES[cause.kind], cause.by].filter(Boolean).join(": ");
      const reason = w.status_reason ? ` (${readableReason(w.status_reason)})` : "";
      return { kind: w.status === "failed" ? "error" : "status", text: `Status ${d.old} → ${d.new}${who ? ` ${who}` : ""}${reason}` };
    }
    case "worker.provisioning_step":
      return { kind: d.state === "failed" ? "error" : "step", text: `Provisioning: ${d.step} — ${d.state}` };
    case "worker.paused":
      return { kind: "status", text: `Paused${d.auto ? " automatically" : ""}: ${d.reason || "no reason"}${d.by ? ` (${d.by})` : ""}` };
    case "worker.resumed":
      return { kind: "status", text: `Resumed${d.by ? ` by ${d.by}` : ""}` };
    case "licence.progress":
      return { kind: d.state === "failed" ? "error" : "step", text: `Licence ${d.operation}: ${d.state}${d.reason ? ` (${d.reason})` : ""}` };
    case "worker.deleted":
      return { kind: "status", text: "Worker deleted" };
    case "worker.changed": {
      const fields = (d.changed || []).filter((f) => !["metrics", "updated_at", "version"].includes(f));
      if (fields.includes("last_error") && w.last_error) {
        return { kind: "error", text: `Error (${w.last_error.source}, ${w.last_error.kind}): ${w.last_error.message}` };
      }
      return fields.length ? { kind: "info", text: `Changed: ${fields.join(", ")}` } : null;
    }
    default:
      return null;
  }
}

/** Timeline lines known from the worker record itself (before any live event). */
function fromRecord(w) {
  const lines = [{ at: w.created_at, kind: "info", text: "Worker created" }];
  lines.push({ at: w.status_changed_at, kind: w.status === "failed" ? "error" : "status", text: `Status ${w.status}${w.status_reason ? ` (${readableReason(w.status_reason)})` : ""}` });
  if (w.last_paused_at) {
    const who = w.last_paused_by ? ` (${w.last_paused_by})` : "";
    lines.push({ at: w.last_paused_at, kind: "status", text: `Paused${w.last_pause_auto ? " automatically" : ""}: ${w.last_pause_reason || "no reason"}${who}` });
  }
  if (w.last_resumed_at) {
    const who = w.last_resumed_by ? ` by ${w.last_resumed_by}` : "";
    const after = w.was_auto_paused ? " (after an automatic pause)" : "";
    lines.push({ at: w.last_resumed_at, kind: "status", text: `Resumed${who}${after}: ${w.last_resume_reason || "resumed"}` });
  }
  if (w.last_error) lines.push({ at: w.last_error.at, kind: "error", text: `Error (${w.last_error.source}, ${w.last_error.kind}): ${w.last_error.message}` });
  return lines;
}

export async function render(ctx, { id }) {
  const { api, live, main, session } = ctx;
  main.innerHTML = `<p class="muted">Loading worker…</p>`;
  let worker;
  try {
    worker = await api.get(`/workers/${encodeURIComponent(id)}`);
  } catch (error) {
    main.innerHTML = `<p><a href="#/">← Fleet</a></p><p class="error" role="alert">${esc(error.message)}</p>`;
    return null;
  }
  const workerId = worker.worker_id;
  const path = `/workers/${encodeURIComponent(workerId)}`;
  const timeline = fromRecord(worker);
  let labs = [];
  let labsError = null;
  let licence = null;
  let settings = null;
  let policy = null;
  let hours = 6;
  let samples = [];
  let charts = null;
  let notice = "";
  document.title = `${worker.name} · CML Cloud Manager`;

  main.innerHTML = `
    <p><a href="#/">← Fleet</a></p>
    <header class="worker-head">
      <h1 id="worker-name"></h1>
      <p id="worker-status" aria-live="polite"></p>
    </header>
    <p id="notice" class="notice" role="status" hidden></p>
    <section aria-labelledby="actions-title" class="panel">
      <h2 id="actions-title">Actions</h2>
      <div id="actions" class="buttons"></div>
      <p id="actions-error" class="error" role="alert" hidden></p>
    </section>
    <div class="grid">
      <section aria-labelledby="details-title" class="panel">
        <h2 id="details-title">Details</h2>
        <dl id="details" class="facts"></dl>
      </section>
      <section aria-labelledby="health-title" class="panel">
        <h2 id="health-title">Health and usage</h2>
        <dl id="usage" class="facts"></dl>
      </section>
    </div>
    <section aria-labelledby="system-title" class="panel">
      <h2 id="system-title">CML system health</h2>
      <div id="cml-system"></div>
    </section>
    <section aria-labelledby="policy-title" class="panel">
      <h2 id="policy-title">Idle policy, schedule and savings</h2>
      <dl id="policy" class="facts"><dt>Status</dt><dd class="muted">Loading…</dd></dl>
      <p id="policy-error" class="error" role="alert" hidden></p>
    </section>
    <section aria-labelledby="charts-title" class="panel">
      <h2 id="charts-title">Metrics</h2>
      <fieldset class="range"><legend>Time range</legend>
        ${[1, 6, 24].map((h) => `<label><input type="radio" name="hours" value="${h}" ${h === hours ? "checked" : ""}> ${h} h</label>`).join("")}
      </fieldset>
      <div id="charts" class="charts"></div>
      <p id="charts-error" class="error" role="alert" hidden></p>
    </section>
    <section aria-labelledby="labs-title" class="panel">
      <h2 id="labs-title">Labs</h2>
      ${session.can("operator") ? `<button type="button" id="labs-sync">Sync labs from CML</button>` : ""}
      <p id="labs-error" class="error" role="alert" hidden></p>
      <div id="labs"></div>
    </section>
    <div class="grid">
      <section aria-labelledby="licence-title" class="panel">
        <h2 id="licence-title">Licence</h2>
        <dl id="licence" class="facts"></dl>
        <div id="licence-detail"></div>
        ${
          session.can("admin")
            ? `<form id="licence-form" class="inline">
                 <label>Smart licence token <input name="token" type="password" autocomplete="off" required minlength="8"></label>
                 <label><input name="reregister" type="checkbox"> re-register</label>
                 <button type="submit">Register licence</button>
               </form>
               <button type="button" id="deregister" class="danger">Deregister licence</button>`
            : ""
        }
        <p id="licence-error" class="error" role="alert" hidden></p>
      </section>
      <section aria-labelledby="tags-title" class="panel">
        <h2 id="tags-title">Tags and idle detection</h2>
        <div id="tags"></div>
        ${
          session.can("admin")
            ? `<form id="tags-form">
                 <label for="tags-text">Tags, one <code>key=value</code> a line (replaces the user tags)</label>
                 <textarea id="tags-text" name="tags" rows="4"></textarea>
                 <button type="submit">Save tags</button>
               </form>
               <label class="toggle"><input type="checkbox" id="idle-toggle"> Idle detection (auto-pause when idle)</label>
               <form id="owner-form" class="inline">
                 <label for="owner-input">Owner <small>(e-mail or user name; empty clears it)</small></label>
                 <input id="owner-input" name="owner" maxlength="128" pattern="[^\\s]+" autocomplete="off">
                 <button type="submit">Save owner</button>
               </form>`
            : `<p id="idle-state"></p>`
        }
        <p id="tags-error" class="error" role="alert" hidden></p>
      </section>
    </div>
    <section aria-labelledby="timeline-title" class="panel">
      <h2 id="timeline-title">Timeline</h2>
      <ol id="timeline" class="timeline" aria-live="polite"></ol>
    </section>`;

  const $ = (selector) => main.querySelector(selector);

  function say(text) {
    notice = text;
    $("#notice").textContent = notice;
    $("#notice").hidden = !notice;
  }

  function actionsFor(w) {
    const s = w.status;
    const list = [{ id: "refresh", label: "Refresh now", role: "operator", when: ["running", "stopped", "starting", "stopping"].includes(s) }];
    list.push({ id: "start", label: "Start", role: "operator", when: s === "stopped" });
    list.push({ id: "resume", label: "Resume", role: "operator", when: s === "stopped" && !!w.last_pause_reason });
    list.push({ id: "stop", label: "Stop", role: "operator", when: s === "running" });
    list.push({ id: "pause", label: "Pause…", role: "operator", when: s === "running" });
    list.push({ id: "terminate", label: "Terminate…", role: "admin", when: !["terminating", "terminated"].includes(s), danger: true });
    list.push({ id: "delete", label: "Delete…", role: "admin", when: true, danger: true });
    return list.filter((a) => a.when && session.can(a.role));
  }

  function renderWorker() {
    const w = worker;
    const m = w.metrics || {};
    const now = Date.now();
    $("#worker-name").textContent = w.name;
    $("#worker-status").innerHTML = `${statusBadge(w.status)} ${w.status_reason ? esc(readableReason(w.status_reason)) : ""} <span class="muted">since ${timeTag(w.status_changed_at, now)}</span>`;
    const wanted = actionsFor(w);
    const actionsEl = $("#actions");
    const signature = wanted.map((a) => a.id).join(",");
    if (actionsEl.dataset.signature !== signature) {
      actionsEl.innerHTML = wanted.length
        ? wanted.map((a) => `<button type="button" data-action="${a.id}" class="${a.danger ? "danger" : ""}">${a.label}</button>`).join("")
        : `<span class="muted">No actions for your role in this state.</span>`;
      actionsEl.dataset.signature = signature;
    }
    const facts = [
      ["Worker id", esc(w.worker_id)],
      ["Instance", esc(w.instance_id || "—")],
      ["Region", esc(w.region)],
      ["Instance type", esc(w.instance_type || "—")],
      ["AMI", w.ami_name ? `${esc(w.ami_name)} <small class="muted">${esc(w.ami_id || "")}</small>` : esc(w.ami_id || "—")],
      ["AMI description", esc(w.ami_description || "—")],
      ["AMI created", w.ami_created_at ? timeTag(w.ami_created_at, now) : "—"],
      ["Owner", `<span id="owner-value">${esc(w.owner || "—")}</span>`],
      ["EC2 state", esc(w.ec2_state || "—")],
      ["Public IP", esc(w.public_ip || "—")],
      ["Private IP", esc(w.private_ip || "—")],
      ["Created", timeTag(w.created_at, now)],
      ["Updated", timeTag(w.updated_at, now)],
      ["Pauses (auto / manual)", `${count(w.pause_count)} (${count(w.auto_pause_count)} / ${count(w.manual_pause_count)})`],
      ["Resumes (auto / manual)", `${count(w.resume_count)} (${count(w.auto_resume_count)} / ${count(w.manual_resume_count)})`],
    ];
    $("#details").innerHTML = facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
    const idle = idleCountdown(w, settings, now);
    const usage = [
      ["CML service", esc(w.service_status)],
      ["CML version", esc(m.cml_version || "—")],
      ["CPU", percent(m.cpu_percent)],
      ["Memory", percent(m.memory_percent)],
      ["CML disk", percent(m.cml_disk_percent)],
      ["Labs running / total", `${count(m.labs_running)} / ${count(m.labs_total)}`],
      ["Nodes running / total", `${count(m.nodes_running)} / ${count(m.nodes_total)}`],
      ["Last activity", timeTag(m.last_activity_at, now)],
      ["Last collected", timeTag(m.collected_at, now)],
      ["Idle pause in", esc(idle.text)],
      ["Last error", w.last_error ? `<span class="error-text">${esc(w.last_error.message)}</span> (${timeTag(w.last_error.at, now)})` : "—"],
    ];
    $("#usage").innerHTML = usage.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
    const l = licence || w.licence || {};
    $("#licence").innerHTML = [
      ["State", esc(licenceText(w))],
      ["Registration", esc(l.registration_status || "—")],
      ["Authorization", esc(l.authorization_status || "—")],
      ["Expires", esc(l.expires || "—")],
      ["Last operation", esc(l.operation ? `${l.operation}: ${l.operation_state || "—"}${l.operation_reason ? ` (${l.operation_reason})` : ""}` : "—")],
    ]
      .map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`)
      .join("");
    renderCmlSystem(w.cml_system || {});
    const tags = Object.entries(w.tags || {});
    $("#tags").innerHTML = tags.length
      ? `<ul class="tags">${tags.map(([k, v]) => `<li><code>${esc(k)}</code> = ${esc(v)}</li>`).join("")}</ul>`
      : `<p class="muted">No tags.</p>`;
    const toggle = $("#idle-toggle");
    if (toggle) toggle.checked = w.idle_detection_enabled;
    const idleState = $("#idle-state");
    if (idleState) idleState.textContent = `Idle detection is ${w.idle_detection_enabled ? "on" : "off"} for this worker.`;
    const ownerInput = $("#owner-input");
    if (ownerInput && document.activeElement !== ownerInput) ownerInput.value = w.owner || "";
    const tagsText = $("#tags-text");
    if (tagsText && document.activeElement !== tagsText) {
      tagsText.value = Object.entries(w.tags || {})
        .filter(([k]) => !["ManagedBy", "WorkerId"].includes(k))
        .map(([k, v]) => `${k}=${v}`)
        .join("\n");
    }
  }

  /** The slow-cadence CML facts: system health with the compute table, the licence's detail. */
  function renderCmlSystem(system) {
    const h = system.health;
    if (!h) {
      $("#cml-system").innerHTML = `<p class="muted">Not read from CML yet.</p>`;
    } else {
      const flags = [
        ["Valid", h.valid],
        ["Licensed", h.is_licensed],
        ["Enterprise", h.is_enterprise],
        ["Controller", h.controller_valid],
        ["Core connected", h.core_connected],
        ["Nodes loaded", h.nodes_loaded],
        ["Images loaded", h.images_loaded],
      ];
      const rows = (h.computes || [])
        .map(
          (c) => `<tr><td>${esc(c.hostname || c.compute_id)}${c.is_controller ? ` <small class="muted">controller</small>` : ""}</td>
            <td>${esc(c.admission_state || "—")}</td><td>${yesNo(c.valid)}</td><td>${yesNo(c.kvm_vmx_enabled)}</td>
            <td>${yesNo(c.lld_connected)} / ${yesNo(c.lld_synced)}</td><td>${yesNo(c.libvirt)}</td><td>${yesNo(c.refplat_images_available)}</td>
            <td class="num">${count(c.cpu_count)}</td><td>${esc(c.cpu_model || "—")}</td>
            <td class="num">${gib(c.memory_total)}</td><td class="num">${gib(c.disk_total)}</td></tr>`,
        )
        .join("");
      $("#cml-system").innerHTML = `
        <dl class="facts">${flags.map(([k, v]) => `<dt>${k}</dt><dd>${yesNo(v)}</dd>`).join("")}</dl>
        <table class="computes"><caption>Compute hosts</caption><thead><tr><th scope="col">Host</th><th scope="col">Admission</th>
          <th scope="col">Valid</th><th scope="col">KVM/VMX</th><th scope="col">LLD connected / synced</th><th scope="col">libvirt</th>
          <th scope="col">Ref. platform images</th><th scope="col">CPUs</th><th scope="col">CPU model</th><th scope="col">Memory</th>
          <th scope="col">Disk</th></tr></thead>
        <tbody>${rows || `<tr><td colspan="11" class="muted">No compute host reported.</td></tr>`}</tbody></table>`;
    }
    const d = system.licence_detail;
    if (!d) {
      $("#licence-detail").innerHTML = "";
      return;
    }
    const facts = [
      ["Smart account", esc(d.smart_account || "—")],
      ["Virtual account", esc(d.virtual_account || "—")],
      ["Product licence", esc(d.product_license || "—")],
      ["UDI", `${esc(d.udi_hostname || "—")} <small class="muted">${esc(d.udi_product_uuid || "")}</small>`],
      ["Reservation mode", yesNo(d.reservation_mode)],
      ["Registration expires", esc(d.registration_expires || "—")],
      ["Authorization expires", esc(d.authorization_expires || "—")],
    ];
    const features = (d.features || [])
      .map(
        (f) => `<tr><td>${esc(f.name || f.id)}</td><td>${esc(f.status || "—")}</td><td class="num">${count(f.in_use)}</td>
          <td class="num">${count(f.min)}–${count(f.max)}</td><td>${esc(f.version || "—")}</td></tr>`,
      )
      .join("");
    $("#licence-detail").innerHTML = `
      <dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>
      <table class="features"><caption>Licensed features</caption><thead><tr><th scope="col">Feature</th><th scope="col">Status</th>
        <th scope="col">In use</th><th scope="col">Min–max</th><th scope="col">Version</th></tr></thead>
      <tbody>${features || `<tr><td colspan="5" class="muted">No feature reported.</td></tr>`}</tbody></table>`;
  }

  function renderPolicy() {
    if (!policy) return;
    const now = Date.now();
    const i = policy.idle;
    const sched = policy.schedule;
    const sv = policy.savings;
    const rows = [
      ["Idle policy", `<strong>${i.eligible ? "eligible" : "not eligible"}</strong>: ${esc(i.message)} <span class="muted">(${esc(i.reason)})</span>`],
      ["Last activity", i.last_activity_at ? `${timeTag(i.last_activity_at, now)} — ${esc(ACTIVITY_SOURCES[i.last_activity_source] || i.last_activity_source)}` : "—"],
      ["Idle pause at", i.pause_at ? timeTag(i.pause_at, now) : "—"],
      ["Snoozed until", i.snoozed_until ? timeTag(i.snoozed_until, now) : "—"],
      ["Schedule", sched ? `${esc(sched.name)} (${esc(sched.timezone)}): wants ${esc(sched.desired)} — ${esc(sched.reason)}` : "none"],
    ];
    if (sched) {
      rows.push(["Schedule's next change", sched.next_change_at ? timeTag(sched.next_change_at, now) : "—"]);
      rows.push(["Next collection run", `${esc(sched.action)}: ${esc(sched.why)}`]);
    }
    rows.push(["Next automatic stop", policy.next_stop_at ? `${timeTag(policy.next_stop_at, now)} by ${esc(policy.next_stop_by)}` : "—"]);
    const price = sv.usd_per_hour === null ? "not in the price table" : `$${sv.usd_per_hour}/h`;
    rows.push(["Saved by the policies", `${sv.hours.toFixed(1)} h (idle ${sv.idle_hours.toFixed(1)} h, schedule ${sv.schedule_hours.toFixed(1)} h)${sv.usd_avoided !== null ? `, $${sv.usd_avoided.toFixed(2)} avoided` : ""} <span class="muted">(${esc(price)})</span>`]);
    if (sv.stopped_by_policy_now) rows.push(["Stopped by policy", `${esc(sv.stopped_by_policy_now)} since ${timeTag(sv.stopped_since, now)}`]);
    $("#policy").innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  }

  /** The explanation is computed by the server at a moment: re-read it when the worker changes. */
  let policyTimer = 0;
  let policyVersion = -1;
  function loadPolicy(force = false) {
    if (!force && worker.version === policyVersion) return;
    clearTimeout(policyTimer);
    policyTimer = setTimeout(async () => {
      try {
        policy = await api.get(`${path}/policy`);
        policyVersion = worker.version;
        showError($("#policy-error"), null);
        renderPolicy();
      } catch (error) {
        showError($("#policy-error"), error);
      }
    }, force ? 0 : 1000);
  }

  function renderLabs() {
    const canOperate = session.can("operator");
    showError($("#labs-error"), labsError);
    if (!labs.length) {
      $("#labs").innerHTML = `<p class="muted">No labs synced from this worker.</p>`;
      return;
    }
    $("#labs").innerHTML = `
      <table class="labs"><thead><tr><th scope="col">Title</th><th scope="col">State</th><th scope="col">Owner</th>
        <th scope="col">Nodes</th><th scope="col">Links</th><th scope="col">Modified</th><th scope="col">Actions</th></tr></thead>
      <tbody>${labs
        .map(
          (lab) => `<tr data-lab="${esc(lab.lab_id)}"><td>${esc(lab.title)}</td><td>${esc(lab.state)}</td><td>${esc(lab.owner_fullname || lab.owner || "—")}</td>
          <td class="num">${count(lab.node_count)}</td><td class="num">${count(lab.link_count)}</td><td>${timeTag(lab.modified)}</td>
          <td class="buttons">
            ${canOperate && lab.state !== "STARTED" ? `<button type="button" data-lab-action="start" aria-label="Start lab ${esc(lab.title)}">Start</button>` : ""}
            ${canOperate && lab.state === "STARTED" ? `<button type="button" data-lab-action="stop" aria-label="Stop lab ${esc(lab.title)}">Stop</button>` : ""}
            ${canOperate && lab.state === "STOPPED" ? `<button type="button" data-lab-action="wipe" aria-label="Wipe lab ${esc(lab.title)}">Wipe</button>` : ""}
            ${canOperate && lab.state !== "STARTED" ? `<button type="button" data-lab-action="delete" class="danger" aria-label="Delete lab ${esc(lab.title)}">Delete</button>` : ""}
            <button type="button" data-lab-action="download" aria-label="Download lab ${esc(lab.title)} as YAML">YAML</button>
          </td></tr>
          <tr class="lab-details" data-lab-details="${esc(lab.lab_id)}"><td colspan="7">${labDetails(lab)}</td></tr>`,
        )
        .join("")}</tbody></table>`;
  }

  /** What CML says about a lab beyond its row: description, notes, groups, its state history. */
  function labDetails(lab) {
    const groups = (lab.groups || []).map((g) => `${esc(g.name || g.id)} (${esc(g.permission)})`).join(", ");
    const history = (lab.state_history || [])
      .slice()
      .reverse()
      .map((h) => `<li>${esc(h.state)} ${timeTag(h.seen_at)}</li>`)
      .join("");
    return `<details><summary>Details of ${esc(lab.title)}</summary><dl class="facts">
      <dt>Description</dt><dd>${esc(lab.description || "—")}</dd>
      <dt>Notes</dt><dd class="pre">${esc(lab.notes || "—")}</dd>
      <dt>Groups</dt><dd>${groups || "—"}</dd>
      <dt>State history</dt><dd>${history ? `<ol class="history">${history}</ol>` : "—"}</dd></dl></details>`;
  }

  function renderTimeline() {
    const sorted = [...timeline].sort((a, b) => (ms(b.at) ?? 0) - (ms(a.at) ?? 0));
    const now = Date.now();
    $("#timeline").innerHTML = sorted
      .slice(0, 200)
      .map((e) => `<li class="t-${e.kind}">${timeTag(e.at, now)} <span>${esc(e.text)}</span></li>`)
      .join("");
  }

  async function reload(reason) {
    worker = await api.get(path);
    renderWorker();
    if (reason) say(reason);
  }

  /** Run a worker action; a 409 reloads the worker and says so. */
  async function act(button, fn) {
    say("");
    const slot = $("#actions-error");
    showError(slot, null);
    button.disabled = true;
    try {
      const updated = await fn();
      if (updated && updated.worker_id) worker = newer(worker, updated);
      renderWorker();
    } catch (error) {
      showError(slot, error);
      if (error.status === 409) {
        await reload(`This worker changed meanwhile, so it was reloaded. (${error.message})`).catch(() => {});
      }
    } finally {
      button.disabled = false;
    }
  }

  $("#actions").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    if (action === "pause") {
      const reason = await confirmDialog(`Pause ${worker.name}?`, { confirmLabel: "Pause", reason: "paused by operator" });
      if (reason === false) return;
      return act(button, () => api.post(`${path}/pause`, { reason: reason || "paused by operator" }));
    }
    if (action === "terminate") {
      if (!(await confirmDialog(`Terminate the instance of ${worker.name}? Its disk is lost.`, { confirmLabel: "Terminate", danger: true }))) return;
      return act(button, () => api.post(`${path}/terminate`));
    }
    if (action === "delete") {
      if (!(await confirmDialog(`Delete ${worker.name}? Its instance is terminated and the record forgotten.`, { confirmLabel: "Delete", danger: true }))) return;
      return act(button, async () => {
        await api.delete(path);
        location.hash = "#/";
      });
    }
    if (action === "refresh") return act(button, () => api.post(`${path}/refresh`));
    return act(button, () => api.post(`${path}/${action}`));
  });

  async function loadLabs(sync = false) {
    try {
      const body = sync ? await api.post(`${path}/labs/refresh`) : await api.get(`${path}/labs`);
      labs = body.items || [];
      labsError = null;
    } catch (error) {
      labsError = error;
    }
    renderLabs();
  }

  $("#labs").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-lab-action]");
    if (!button) return;
    const labId = button.closest("tr").dataset.lab;
    const lab = labs.find((l) => l.lab_id === labId);
    const action = button.dataset.labAction;
    const slot = $("#labs-error");
    if (action === "download") {
      await runAction(button, slot, async () => {
        const text = await api.get(`${path}/labs/${encodeURIComponent(labId)}/download`, { text: true });
        const link = document.createElement("a");
        link.href = URL.createObjectURL(new Blob([text], { type: "application/x-yaml" }));
        link.download = `${lab ? lab.title : labId}.yaml`;
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 1000);
      });
      return;
    }
    if (action === "delete" && !(await confirmDialog(`Delete lab ${lab ? lab.title : labId}?`, { confirmLabel: "Delete", danger: true }))) return;
    await runAction(button, slot, async () => {
      if (action === "delete") await api.delete(`${path}/labs/${encodeURIComponent(labId)}`);
      else await api.put(`${path}/labs/${encodeURIComponent(labId)}/${action}`);
      await loadLabs();
    });
  });
  const syncButton = $("#labs-sync");
  if (syncButton) syncButton.addEventListener("click", () => runAction(syncButton, $("#labs-error"), () => loadLabs(true)));

  const licenceForm = $("#licence-form");
  if (licenceForm) {
    licenceForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = licenceForm.querySelector("button");
      await runAction(button, $("#licence-error"), async () => {
        const updated = await api.post(`${path}/licence`, { token: licenceForm.elements.token.value, reregister: licenceForm.elements.reregister.checked });
        licenceForm.reset();
        worker = newer(worker, updated);
        licence = null;
        renderWorker();
      });
    });
    $("#deregister").addEventListener("click", async (event) => {
      if (!(await confirmDialog(`Deregister the licence of ${worker.name}?`, { confirmLabel: "Deregister", danger: true }))) return;
      await runAction(event.target, $("#licence-error"), async () => {
        worker = newer(worker, await api.delete(`${path}/licence`));
        licence = null;
        renderWorker();
      });
    });
  }
  const tagsForm = $("#tags-form");
  if (tagsForm) {
    tagsForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const tags = {};
      for (const line of tagsForm.elements.tags.value.split("\n")) {
        if (!line.trim()) continue;
        const at = line.indexOf("=");
        if (at < 1) {
          showError($("#tags-error"), new Error(`"${line.trim()}" is not key=value`));
          return;
        }
        tags[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      await act(tagsForm.querySelector("button"), () => api.put(`${path}/tags`, { tags, mode: "replace" }));
    });
    $("#owner-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const owner = event.target.elements.owner.value.trim();
      await act(event.target.querySelector("button"), () => api.put(`${path}/owner`, { owner: owner || null }));
    });
    $("#idle-toggle").addEventListener("change", async (event) => {
      const box = event.target;
      await runAction(box, $("#tags-error"), async () => {
        worker = newer(worker, await api.put(`${path}/idle-detection`, { enabled: box.checked }));
      });
      renderWorker();
    });
  }

  async function loadMetrics() {
    try {
      const body = await api.get(`${path}/metrics?hours=${hours}`);
      samples = body.samples || [];
      showError($("#charts-error"), null);
      if (charts) charts.update(samples, hours);
      else charts = drawCharts($("#charts"), samples, hours);
    } catch (error) {
      showError($("#charts-error"), error);
    }
  }
  main.querySelector("fieldset.range").addEventListener("change", (event) => {
    hours = Number(event.target.value);
    loadMetrics();
  });

  /** A newer collection than the charts' last point extends the series without a reload. */
  function extendCharts(w) {
    const m = w.metrics;
    if (!m || !charts) return;
    const last = samples.length ? ms(samples[samples.length - 1].at) : 0;
    if ((ms(m.collected_at) ?? 0) <= last) return;
    samples = [...samples, { at: m.collected_at, cpu_percent: m.cpu_percent, memory_percent: m.memory_percent, labs_running: m.labs_running, nodes_running: m.nodes_running }];
    charts.update(samples);
  }

  const stopWorker = live.subscribe(`workers/${workerId}`, (message) => {
    if (message.type === "snapshot") {
      worker = newer(worker, message.data);
    } else {
      if (message.data && message.data.worker_id === workerId) worker = newer(worker, message.data);
      const line = describe(message);
      if (line) timeline.push({ at: message.time || new Date().toISOString(), ...line });
      if (message.type === "licence.progress") licence = null;
      renderTimeline();
    }
    extendCharts(worker);
    renderWorker();
    loadPolicy();
  });
  const stopLabs = live.subscribe(`workers/${workerId}/labs`, (message) => {
    if (message.type === "snapshot") labs = message.data.labs || [];
    else if (message.type === "lab.deleted") labs = labs.filter((l) => l.lab_id !== message.data.lab_id);
    else if (message.data && message.data.lab_id) {
      labs = [...labs.filter((l) => l.lab_id !== message.data.lab_id), message.data].sort((a, b) => a.title.localeCompare(b.title));
    }
    renderLabs();
  });
  const ticker = setInterval(() => {
    renderWorker();
    renderTimeline();
    renderPolicy();
  }, 15_000);
  const policyTicker = setInterval(() => loadPolicy(true), 60_000);

  renderWorker();
  renderTimeline();
  ctx.settings().then(
    (value) => {
      settings = value;
      renderWorker();
    },
    () => {},
  );
  api.get(`${path}/licence`).then(
    (value) => {
      licence = value;
      renderWorker();
    },
    () => {},
  );
  loadPolicy(true);
  await Promise.all([loadLabs(), loadMetrics()]);
  return () => {
    stopWorker();
    stopLabs();
    clearInterval(ticker);
    clearInterval(policyTicker);
    clearTimeout(policyTimer);
    if (charts) charts.destroy();
  };
}
