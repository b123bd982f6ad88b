// Settings: admins edit (version-guarded; a 409 reloads and says so), others read.

import { esc } from "./format.js";
import { showError } from "./ui.js";

function fieldInput(key, value, editable) {
  const id = `set-${key}`;
  const disabled = editable ? "" : "disabled";
  let input;
  if (typeof value === "boolean") input = `<input type="checkbox" id="${id}" name="${key}" ${value ? "checked" : ""} ${disabled}>`;
  else if (typeof value === "number") input = `<input type="number" id="${id}" name="${key}" value="${value}" ${disabled}>`;
  else if (value && typeof value === "object") input = `<textarea id="${id}" name="${key}" rows="6" data-json ${disabled}>${esc(JSON.stringify(value, null, 2))}</textarea>`;
  else input = `<input id="${id}" name="${key}" value="${esc(value ?? "")}" ${disabled}>`;
  return `<div class="field" data-field="${key}"><label for="${id}">${esc(key.replace(/_/g, " "))}</label>${input}<p class="error" role="alert" hidden></p></div>`;
}

export async function render(ctx) {
  const { api, main, session } = ctx;
  document.title = "Settings · CML Cloud Manager";
  const editable = session.can("admin");
  main.innerHTML = `<h1>Settings</h1><p id="settings-notice" class="notice" role="status" hidden></p><form id="settings-form"></form>`;
  const form = main.querySelector("#settings-form");
  let current = null;

  async function load(notice) {
    current = await ctx.settings(true);
    form.innerHTML =
      (editable ? "" : `<p class="muted">Read-only: changing settings needs the admin role.</p>`) +
      Object.entries(current)
        .filter(([key]) => key !== "version")
        .map(([key, value]) => fieldInput(key, value, editable))
        .join("") +
      `<p class="muted">Version ${current.version}</p>` +
      (editable ? `<button type="submit" class="primary">Save settings</button>` : "") +
      `<p id="settings-error" class="error" role="alert" hidden></p>`;
    const el = main.querySelector("#settings-notice");
    el.textContent = notice || "";
    el.hidden = !notice;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const slot of form.querySelectorAll(".error")) showError(slot, null);
    const body = { version: current.version };
    for (const [key, value] of Object.entries(current)) {
      if (key === "version") continue;
      const input = form.elements[key];
      if (typeof value === "boolean") body[key] = input.checked;
      else if (typeof value === "number") body[key] = input.valueAsNumber;
      else if (input.hasAttribute("data-json")) {
        try {
          body[key] = JSON.parse(input.value);
        } catch (error) {
          showError(input.parentElement.querySelector(".error"), new Error(`not JSON: ${error.message}`));
          return;
        }
      } else body[key] = input.value;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api.put("/settings", body);
      await load("Settings saved.");
    } catch (error) {
      if (error.status === 409) {
        await load(`Someone else changed the settings, so they were reloaded; make your change again. (${error.message})`);
        return;
      }
      const top = (error.field || "").split(".")[0];
      const slot = form.querySelector(`[data-field="${CSS.escape(top)}"] .error`) || form.querySelector("#settings-error");
      showError(slot, error);
    } finally {
      button.disabled = false;
    }
  });

  try {
    await load();
  } catch (error) {
    main.insertAdjacentHTML("beforeend", `<p class="error" role="alert">${esc(error.message)}</p>`);
  }
  return null;
}
