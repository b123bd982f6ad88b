// Fleet view: every worker in one table, live from the `fleet` topic. Rows whose content changed
// are patched in place; the table is rebuilt only when the visible order changes.
//
// One read of the fleet per page: the topic's snapshot (each worker's summary, what the table
// shows) is the first render, and is applied again after every reconnect. GET /workers is read
// only without a live connection: no WebSocket URL, or the socket fails before a snapshot came.

import { count, esc, ms, percent, timeTag } from "./format.js";
import { STATUSES, idleCountdown, licenceText, newer } from "./workers.js";
import { showError, statusBadge } from "./ui.js";

/** Rows inserted at once when the table is rebuilt (more than a screenful), then per frame. */
const FIRST_ROWS = 60;
const CHUNK_ROWS = 250;

const COLUMNS = [
  { key: "name", label: "Name", value: (w) => w.name.toLowerCase() },
  { key: "status", label: "Status", value: (w) => w.status },
  { key: "region", label: "Region", value: (w) => w.region },
  { key: "instance_type", label: "Instance type", value: (w) => w.instance_type || "" },
  { key: "cpu", label: "CPU", value: (w) => w.metrics?.cpu_percent ?? -1, numeric: true },
  { key: "memory", label: "Memory", value: (w) => w.metrics?.memory_percent ?? -1, numeric: true },
  { key: "labs", label: "Running labs", value: (w) => w.metrics?.labs_running ?? -1, numeric: true },
  { key: "licence", label: "Licence", value: (w) => licenceText(w) },
  { key: "last_seen", label: "Last seen", value: (w) => ms(w.metrics?.collected_at) ?? 0, numeric: true },
  { key: "idle", label: "Idle pause in", value: (w, s, now) => idleCountdown(w, s, now).sortValue, numeric: true },
];

function rowCells(w, settings, now) {
  const m = w.metrics || {};
  const idle = idleCountdown(w, settings, now);
  return (
    `<td><a href="#/workers/${encodeURIComponent(w.worker_id)}">${esc(w.name)}</a></td>` +
    `<td>${statusBadge(w.status)}</td>` +
    `<td>${esc(w.region)}</td>` +
    `<td>${esc(w.instance_type || "—")}</td>` +
    `<td class="num">${percent(m.cpu_percent)}</td>` +
    `<td class="num">${percent(m.memory_percent)}</td>` +
    `<td class="num">${count(m.labs_running)}</td>` +
    `<td>${esc(licenceText(w))}</td>` +
    `<td>${timeTag(m.collected_at, now)}</td>` +
    `<td>${esc(idle.text)}</td>`
  );
}

export async function render(ctx) {
  const { api, live, main, session } = ctx;
  document.title = "Fleet · CML Cloud Manager";
  const started = performance.now();
  main.innerHTML = `
    <h1>Fleet</h1>
    <div class="toolbar">
      <div id="counts" class="counts" aria-label="Workers by status"></div>
      ${session.can("admin") ? `<a class="button primary" href="#/create">Create or import worker</a>` : ""}
    </div>
    <form class="filters" role="search" aria-label="Filter workers">
      <div><label for="f-status">Status</label> <select id="f-status" name="status"><option value="">all</option>${STATUSES.map(
        (s) => `<option>${s}</option>`,
      ).join("")}</select></div>
      <div><label for="f-region">Region</label> <select id="f-region" name="region"><option value="">all</option></select></div>
      <div><label for="f-text">Search</label> <input id="f-text" name="text" type="search" placeholder="name, id, instance, owner"></div>
      <span id="shown" class="muted" aria-live="polite"></span>
    </form>
    <p id="fleet-error" class="error" role="alert" hidden></p>
    <div class="table-wrap">
      <table id="fleet" aria-describedby="shown">
        <thead><tr>${COLUMNS.map(
          (c) => `<th scope="col" aria-sort="none"><button type="button" data-sort="${c.key}">${c.label}</button></th>`,
        ).join("")}</tr></thead>
        <tbody></tbody>
      </table>
    </div>`;
  const form = main.querySelector("form.filters");
  const tbody = main.querySelector("tbody");
  const countsEl = main.querySelector("#counts");
  const shownEl = main.querySelector("#shown");
  const regionSelect = form.elements.region;
  const workers = new Map();
  const rows = new Map(); // worker_id -> { tr, html }
  let order = [];
  let settings = null;
  let sort = { key: "name", dir: 1 };
  let snapshotSeen = false;
  let pending = null; // a snapshot arriving in parts
  let firstRenderDone = false;
  let loaded = false; // the fleet was read once (an empty one then says so)
  let firstSource = null; // what the first render showed: "rest" (GET /workers) or "snapshot" (live)
  let frame = 0;
  let allRowsMarked = false;

  function visible(now) {
    const status = form.elements.status.value;
    const region = regionSelect.value;
    const text = form.elements.text.value.trim().toLowerCase();
    const column = COLUMNS.find((c) => c.key === sort.key);
    const list = [];
    for (const w of workers.values()) {
      if (status && w.status !== status) continue;
      if (region && w.region !== region) continue;
      if (text && ![w.name, w.worker_id, w.instance_id, w.owner].some((v) => v && v.toLowerCase().includes(text))) continue;
      list.push(w);
    }
    const keyed = list.map((w) => [column.value(w, settings, now), w]);
    keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1].name.localeCompare(b[1].name)) * sort.dir);
    return keyed.map((pair) => pair[1]);
  }

  function renderCounts() {
    const byStatus = {};
    for (const w of workers.values()) byStatus[w.status] = (byStatus[w.status] || 0) + 1;
    countsEl.innerHTML =
      `<span class="count total">${workers.size} workers</span>` +
      STATUSES.filter((s) => byStatus[s])
        .map((s) => `<button type="button" class="count" data-status="${s}" aria-label="Show ${byStatus[s]} ${s}">${statusBadge(s)} ${byStatus[s]}</button>`)
        .join("");
    const regions = [...new Set([...workers.values()].map((w) => w.region))].sort();
    const current = regionSelect.value;
    const wanted = ["", ...regions].join("|");
    if (regionSelect.dataset.options !== wanted) {
      regionSelect.innerHTML = `<option value="">all</option>` + regions.map((r) => `<option>${esc(r)}</option>`).join("");
      regionSelect.value = regions.includes(current) ? current : "";
      regionSelect.dataset.options = wanted;
    }
  }

  function renderNow() {
    frame = 0;
    // Events can arrive before the snapshot: they are kept (merged with it by version), but the
    // table shows the fleet only once it has been read whole.
    if (!loaded) {
      shownEl.textContent = "Loading the fleet…";
      return;
    }
    const renderStart = performance.now();
    const now = Date.now();
    const list = visible(now);
    const ids = list.map((w) => w.worker_id);
    const sameOrder = ids.length === order.length && ids.every((id, i) => id === order[i]);
    if (sameOrder) {
      for (const w of list) {
        const row = rows.get(w.worker_id);
        if (!row) continue; // not appended yet: it is built from the newest data when it is
        const html = rowCells(w, settings, now);
        if (row.html !== html) {
          row.tr.innerHTML = html;
          row.html = html;
        }
      }
    } else {
      // The first screenful of rows goes in now; the rest in later frames, a chunk each, so a
      // large fleet is on screen before every row of it is laid out (the table's fixed layout
      // takes its column widths from the header: rows added later move nothing).
      cancelAppend();
      rows.clear();
      order = ids;
      const first = Math.min(list.length, FIRST_ROWS);
      tbody.textContent = "";
      insertRows(list.slice(0, first), settings, now);
      if (first < list.length) appendLater(ids.slice(first));
      else markAllRows();
    }
    renderCounts();
    shownEl.textContent = workers.size === 0 && loaded ? "No workers yet." : `${list.length} of ${workers.size} shown`;
    for (const th of main.querySelectorAll("th")) {
      const key = th.querySelector("button").dataset.sort;
      th.setAttribute("aria-sort", key === sort.key ? (sort.dir === 1 ? "ascending" : "descending") : "none");
    }
    if (!firstRenderDone) {
      firstRenderDone = true;
      // Read by the browser tests and the first-render benchmark: the table's markup is in the
      // DOM (first-render), and two frames later it has been laid out and painted (first-paint).
      const end = performance.now();
      const detail = { rows: list.length, source: firstSource };
      performance.measure("fleet-first-render", { start: 0, end, detail });
      performance.measure("fleet-view-render", { start: started, end, detail });
      performance.measure("fleet-table-render", { start: renderStart, end, detail });
      requestAnimationFrame(() => requestAnimationFrame(() => performance.measure("fleet-first-paint", { start: 0, detail })));
    }
  }

  /** Insert the rows of `list` at the end of the table and keep each in the row map. */
  function insertRows(list, settings, now) {
    const htmls = list.map((w) => rowCells(w, settings, now));
    const markup = list.map((w, i) => `<tr data-id="${esc(w.worker_id)}">${htmls[i]}</tr>`).join("");
    const before = tbody.rows.length;
    tbody.insertAdjacentHTML("beforeend", markup);
    const trs = tbody.rows;
    for (let i = 0; i < list.length; i++) rows.set(list[i].worker_id, { tr: trs[before + i], html: htmls[i] });
  }

  let appendFrame = 0;
  function cancelAppend() {
    cancelAnimationFrame(appendFrame);
    appendFrame = 0;
  }

  function markAllRows() {
    if (allRowsMarked) return;
    allRowsMarked = true;
    // Read by the first-render benchmark: every row of the fleet laid out and painted.
    requestAnimationFrame(() => requestAnimationFrame(() => performance.measure("fleet-all-rows-paint", { start: 0 })));
  }

  /** Append the rows of `ids` (in this order) a chunk per frame, each from its worker's data then. */
  function appendLater(ids) {
    let next = 0;
    const step = () => {
      appendFrame = 0;
      const chunk = ids.slice(next, next + CHUNK_ROWS).filter((id) => workers.has(id));
      next += CHUNK_ROWS;
      insertRows(chunk.map((id) => workers.get(id)), settings, Date.now());
      if (next < ids.length) appendFrame = requestAnimationFrame(step);
      else markAllRows();
    };
    // After the first rows' frame has been painted: a chunk in that frame would delay it.
    appendFrame = requestAnimationFrame(() => {
      appendFrame = requestAnimationFrame(step);
    });
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(renderNow);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("submit", (event) => event.preventDefault());
  countsEl.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-status]");
    if (!button) return;
    form.elements.status.value = form.elements.status.value === button.dataset.status ? "" : button.dataset.status;
    schedule();
  });
  main.querySelector("thead").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-sort]");
    if (!button) return;
    sort = { key: button.dataset.sort, dir: sort.key === button.dataset.sort ? -sort.dir : 1 };
    schedule();
  });

  const stopLive = live.subscribe("fleet", (message) => {
    if (message.type === "snapshot") {
      // A large fleet comes in parts (detail.part of detail.parts, one event id): apply it whole.
      const part = (message.detail && message.detail.part) || 1;
      const parts = (message.detail && message.detail.parts) || 1;
      if (part === 1 || !pending || pending.id !== message.id) pending = { id: message.id, items: [], seen: 0 };
      if (!snapshotSeen && pending.seen === 0) performance.mark("fleet-snapshot-first-part");
      pending.items.push(...message.data.workers);
      pending.seen += 1;
      if (pending.seen < parts) return;
      const previous = new Map(workers);
      workers.clear();
      // An event that crossed the snapshot keeps its newer version.
      for (const w of pending.items) workers.set(w.worker_id, newer(previous.get(w.worker_id), w));
      pending = null;
      if (!snapshotSeen) performance.mark("fleet-snapshot-complete");
      snapshotSeen = true;
      loaded = true;
      firstSource = firstSource || "snapshot";
    } else if (message.type === "worker.deleted") {
      workers.delete(message.data.worker_id);
    } else if (message.data && message.data.worker_id) {
      workers.set(message.data.worker_id, newer(workers.get(message.data.worker_id), message.data));
    }
    schedule();
  });
  // Relative times and idle countdowns move with the clock.
  const ticker = setInterval(schedule, 15_000);

  ctx.settings().then(
    (value) => {
      settings = value;
      schedule();
    },
    () => {},
  );
  let restRead = false;
  async function readOverRest() {
    if (restRead) return;
    restRead = true;
    try {
      const items = await api.allWorkers();
      if (!snapshotSeen) {
        for (const w of items) workers.set(w.worker_id, newer(workers.get(w.worker_id), w));
        firstSource = firstSource || "rest";
      }
      loaded = true;
      schedule();
    } catch (error) {
      showError(main.querySelector("#fleet-error"), error);
    }
  }
  // Called at once with the current state, then on each change.
  const stopState = ctx.config.wsUrl
    ? live.onState((state) => {
        if (!snapshotSeen && (state === "reconnecting" || state === "offline")) readOverRest();
      })
    : null;
  // An error reply about the subscription (no snapshot will come) falls back too.
  const stopErrors = live.onError((message) => {
    if (!snapshotSeen && (!message.topic || message.topic === "fleet")) readOverRest();
  });
  if (!ctx.config.wsUrl) readOverRest();
  return () => {
    stopLive();
    stopErrors();
    if (stopState) stopState();
    clearInterval(ticker);
    if (frame) cancelAnimationFrame(frame);
    cancelAppend();
  };
}
