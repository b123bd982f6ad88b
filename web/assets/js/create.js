// Create (with an Idempotency-Key) and import workers (admin), then follow the provisioning saga
// live until the worker is RUNNING or FAILED.

import { esc, timeTag } from "./format.js";
import { runAction, showError, statusBadge } from "./ui.js";
import { newer, readableReason } from "./workers.js";

export async function render(ctx) {
  const { api, live, main, session } = ctx;
  document.title = "Create or import · CML Cloud Manager";
  if (!session.can("admin")) {
    main.innerHTML = `<h1>Create or import</h1><p>Creating and importing workers needs the admin role; you are ${esc(session.role || "without a role")}.</p>`;
    return null;
  }
  let settings = null;
  try {
    settings = await ctx.settings();
  } catch {
    settings = { region_defaults: {} };
  }
  const regions = Object.keys(settings.region_defaults || {});
  const regionInput = (id) =>
    regions.length
      ? `<select id="${id}" name="region" required>${regions.map((r) => `<option>${esc(r)}</option>`).join("")}</select>`
      : `<input id="${id}" name="region" required placeholder="us-east-1">`;
  main.innerHTML = `
    <h1>Create or import</h1>
    <div class="grid">
      <section class="panel" aria-labelledby="create-title">
        <h2 id="create-title">Create a worker</h2>
        <form id="create-form" novalidate>
          <label for="c-name">Name</label>
          <input id="c-name" name="name" required maxlength="63" pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,62}" autocomplete="off"
                 aria-describedby="c-name-help">
          <small id="c-name-help">Letters, digits, ".", "_" or "-"; unique.</small>
          <label for="c-region">Region</label>${regionInput("c-region")}
          <label for="c-type">Instance type <small>(optional)</small></label>
          <input id="c-type" name="instance_type" placeholder="region default">
          <label for="c-image-by">Image <small>(optional: else the region's default AMI)</small></label>
          <select id="c-image-by" name="image_by" aria-describedby="c-image-help">
            <option value="ami_id">by AMI id</option>
            <option value="ami_name">by AMI name (newest match; * and ? wildcards)</option>
            <option value="cml_version">by CML version (newest AMI of it)</option>
          </select>
          <label for="c-image" class="visually-hidden">Image value</label>
          <input id="c-image" name="image" placeholder="region default" autocomplete="off" aria-describedby="c-image-help">
          <small id="c-image-help">e.g. ami-0123456789abcdef0, cml2-controller-2.9*, or 2.9</small>
          <label for="c-owner">Owner <small>(optional)</small></label>
          <input id="c-owner" name="owner" maxlength="128">
          <button type="submit" class="primary">Create worker</button>
          <p id="create-error" class="error" role="alert" hidden></p>
        </form>
      </section>
      <section class="panel" aria-labelledby="import-title">
        <h2 id="import-title">Import existing instances</h2>
        <form id="import-form">
          <label for="i-region">Region</label>${regionInput("i-region")}
          <fieldset><legend>Import</legend>
            <label><input type="radio" name="by" value="instance_id" checked> one instance</label>
            <label><input type="radio" name="by" value="ami_name_pattern"> every instance of AMIs named like</label>
          </fieldset>
          <label for="i-value">Instance id or AMI name pattern</label>
          <input id="i-value" name="value" required placeholder="i-0123456789abcdef0 or cml2-*">
          <label for="i-name">Worker name <small>(optional, one instance only: else its Name tag)</small></label>
          <input id="i-name" name="name" maxlength="63" pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,62}" autocomplete="off">
          <button type="submit">Import</button>
          <p id="import-error" class="error" role="alert" hidden></p>
        </form>
        <div id="import-result" aria-live="polite"></div>
      </section>
    </div>
    <section id="progress" class="panel" aria-labelledby="progress-title" hidden>
      <h2 id="progress-title">Provisioning</h2>
      <p id="progress-status" role="status" aria-live="polite"></p>
      <ol id="progress-steps" class="timeline"></ol>
    </section>`;
  const $ = (s) => main.querySelector(s);
  const createForm = $("#create-form");
  let idempotency = { payload: null, key: null };
  let stopFollow = null;
  let poller = null;

  function follow(created) {
    if (stopFollow) stopFollow();
    clearInterval(poller);
    let worker = created;
    const steps = [];
    $("#progress").hidden = false;
    const show = () => {
      const done = worker.status === "running" ? "done" : worker.status === "failed" ? "failed" : "working";
      const reason = worker.status === "failed" ? readableReason(worker.status_reason || (worker.last_error && worker.last_error.message)) || "no reason given" : "";
      $("#progress-status").innerHTML =
        `<a href="#/workers/${encodeURIComponent(worker.worker_id)}">${esc(worker.name)}</a> ${statusBadge(worker.status)} ` +
        (done === "done" ? "is running." : done === "failed" ? `failed: <span class="error-text" id="failure-reason">${esc(reason)}</span>` : "is being provisioned…");
      $("#progress").dataset.state = done;
      $("#progress-steps").innerHTML = steps.map((s) => `<li class="t-${s.kind}">${timeTag(s.at)} ${esc(s.text)}</li>`).join("");
    };
    const stop = live.subscribe(`workers/${worker.worker_id}`, (message) => {
      if (message.data && message.data.worker_id === worker.worker_id) worker = newer(worker, message.data);
      const d = message.detail || {};
      if (message.type === "worker.provisioning_step") steps.push({ at: message.time, kind: d.state === "failed" ? "error" : "step", text: `${d.step}: ${d.state}` });
      if (message.type === "worker.status_changed") steps.push({ at: message.time, kind: d.new === "failed" ? "error" : "status", text: `status ${d.old} → ${d.new}` });
      show();
    });
    // While the live connection is down, the saga's progress still shows (polled over REST).
    poller = setInterval(async () => {
      if (live.state === "live" || ["running", "failed"].includes(worker.status)) return;
      try {
        worker = newer(worker, await api.get(`/workers/${encodeURIComponent(worker.worker_id)}`));
        show();
      } catch {
        /* shown again on the next tick */
      }
    }, 3000);
    stopFollow = stop;
    show();
  }

  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const slot = $("#create-error");
    if (!createForm.checkValidity()) {
      const bad = createForm.querySelector(":invalid");
      showError(slot, new Error(`${bad.labels[0].textContent.trim()}: ${bad.validationMessage}`));
      bad.focus();
      return;
    }
    const body = {};
    for (const [key, value] of new FormData(createForm)) {
      if (key === "image_by" || key === "image") continue;
      if (String(value).trim()) body[key] = String(value).trim();
    }
    // One of ami_id, ami_name or cml_version (the API resolves a name or version to the newest AMI).
    const image = createForm.elements.image.value.trim();
    if (image) body[createForm.elements.image_by.value] = image;
    const payload = JSON.stringify(body);
    // The same request (a retry after a lost answer) keeps its key, so it creates one worker.
    if (idempotency.payload !== payload) idempotency = { payload, key: crypto.randomUUID() };
    const created = await runAction(createForm.querySelector("button"), slot, () =>
      api.post("/workers", body, { headers: { "Idempotency-Key": idempotency.key } }),
    );
    if (created) follow(created.worker);
  });

  $("#import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { region: form.elements.region.value, [form.elements.by.value]: form.elements.value.value.trim() };
    const name = form.elements.name.value.trim();
    if (name) body.name = name;
    const result = await runAction(form.querySelector("button"), $("#import-error"), () => api.post("/workers/import", body));
    if (!result) return;
    $("#import-result").innerHTML = `
      <h3>Imported ${result.imported.length}</h3>
      <ul>${result.imported.map((w) => `<li><a href="#/workers/${encodeURIComponent(w.worker_id)}">${esc(w.name)}</a> (${esc(w.instance_id)})</li>`).join("")}</ul>
      ${result.skipped.length ? `<h3>Skipped ${result.skipped.length}</h3><ul>${result.skipped.map((s) => `<li>${esc(s.instance_id)}: ${esc(s.reason)}</li>`).join("")}</ul>` : ""}`;
  });

  return () => {
    if (stopFollow) stopFollow();
    clearInterval(poller);
  };
}
