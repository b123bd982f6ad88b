// Entry point: read /config.json, sign in, then route between the views (hash routes) with one
// live connection shared by all of them.

import { Api } from "./api.js";
import { resolveSession, startHostedSignIn } from "./auth.js";
import { esc } from "./format.js";
import { LiveClient } from "./live.js";

const VIEWS = {
  fleet: () => import("./fleet.js"),
  worker: () => import("./worker.js"),
  create: () => import("./create.js"),
  settings: () => import("./settings.js"),
  health: () => import("./health.js"),
  policy: () => import("./policy.js"),
  jobs: () => import("./jobs.js"),
};

const main = document.getElementById("main");

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "workers" && parts[1]) return { view: "worker", params: { id: parts[1] } };
  if (parts[0] in VIEWS && parts[0] !== "worker") return { view: parts[0], params: {} };
  return { view: "fleet", params: {} };
}

function signInScreen(config) {
  document.title = "Sign in · CML Cloud Manager";
  if (config.mode === "local") {
    main.innerHTML = `
      <section class="signin" aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in (local mode)</h1>
        <p>Local mode has three development users, one per role:</p>
        <ul class="users">
          ${(config.devUsers || [])
            .map((user) => `<li><a class="button" href="/?user=${esc(user)}">${esc(user)}</a></li>`)
            .join("")}
        </ul>
        <p class="muted">Or open <code>/?user=dev-viewer</code> directly. These users exist only locally.</p>
      </section>`;
    return;
  }
  main.innerHTML = `
    <section class="signin" aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
      <p>Sign in with your CML Cloud Manager account (Amazon Cognito).</p>
      <button type="button" class="primary" id="signin">Sign in</button>
    </section>`;
  document.getElementById("signin").addEventListener("click", () => startHostedSignIn(config));
}

async function boot() {
  const config = await (await fetch("/config.json", { cache: "no-store" })).json();
  let session;
  try {
    session = await resolveSession(config);
  } catch (error) {
    main.innerHTML = `<p role="alert" class="error">${esc(error.message)}</p>`;
    return;
  }
  if (!session) {
    signInScreen(config);
    return;
  }
  const api = new Api(config, session);
  const live = new LiveClient(config.wsUrl, () => session.wsToken());
  const ctx = { config, session, api, live, main, settingsCache: null };
  /** Settings are needed by several views (idle countdown, regions); read once, refreshed on demand. */
  ctx.settings = (fresh = false) => {
    if (fresh || !ctx.settingsCache) ctx.settingsCache = api.get("/settings");
    return ctx.settingsCache;
  };

  document.getElementById("who").textContent = `${session.user} · ${session.role || "no role"}`;
  const nav = document.getElementById("nav");
  for (const link of nav.querySelectorAll("[data-min-role]")) {
    if (!session.can(link.dataset.minRole)) link.remove();
  }
  nav.hidden = false;
  const signOut = document.getElementById("signout");
  signOut.hidden = false;
  signOut.addEventListener("click", () => {
    live.stop();
    session.signOut();
  });
  const indicator = document.getElementById("conn");
  indicator.hidden = !config.wsUrl;
  live.onState((state) => {
    indicator.dataset.state = state;
    indicator.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", offline: "offline" }[state];
  });
  live.start();

  let cleanup = null;
  let generation = 0;
  async function show() {
    const { view, params } = route();
    const mine = ++generation;
    if (cleanup) cleanup();
    cleanup = null;
    for (const link of nav.querySelectorAll("a")) {
      const current = link.getAttribute("href") === `#/${view === "fleet" ? "" : view}`;
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const module = await VIEWS[view]();
    if (mine !== generation) return;
    main.innerHTML = "";
    const done = (await module.render(ctx, params)) || null;
    if (mine !== generation) {
      if (done) done();
      return;
    }
    cleanup = done;
  }
  window.addEventListener("hashchange", show);
  await show();
}

boot().catch((error) => {
  main.innerHTML = `<p role="alert" class="error">The dashboard could not start: ${esc(error.message)}</p>`;
});
