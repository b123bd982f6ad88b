// Small UI helpers shared by the views: running an action with its error shown beside it, and a
// confirmation dialog (optionally asking for a reason).

import { esc } from "./format.js";

/** Show an API error's message in `slot` (an element with role=alert next to the control). */
export function showError(slot, error) {
  if (!slot) return;
  slot.textContent = error ? error.message : "";
  slot.hidden = !error;
}

/** Run `fn` for `button`: disabled while it runs, errors shown in `slot`. Returns fn's result or undefined. */
export async function runAction(button, slot, fn) {
  showError(slot, null);
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (error) {
    showError(slot, error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** A modal confirmation. Resolves to false (cancelled), true, or the typed reason when `reason` is given. */
export function confirmDialog(message, { confirmLabel = "Confirm", reason = null, danger = false } = {}) {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = "confirm";
    dialog.setAttribute("aria-labelledby", "confirm-title");
    dialog.innerHTML = `
      <form method="dialog">
        <h2 id="confirm-title">${esc(message)}</h2>
        ${
          reason !== null
            ? `<label>Reason <input name="reason" required maxlength="200" value="${esc(reason)}"></label>`
            : ""
        }
        <div class="buttons">
          <button value="cancel" type="submit" formnovalidate>Cancel</button>
          <button value="confirm" type="submit" class="${danger ? "danger" : "primary"}">${esc(confirmLabel)}</button>
        </div>
      </form>`;
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const confirmed = dialog.returnValue === "confirm";
      const typed = dialog.querySelector("input[name=reason]");
      dialog.remove();
      if (!confirmed) resolve(false);
      else resolve(typed ? typed.value.trim() : true);
    });
    dialog.showModal();
    (dialog.querySelector("input") || dialog.querySelector("button.primary, button.danger")).focus();
  });
}

/** Status badge markup (class per status for colour, text for meaning). */
export function statusBadge(status) {
  return `<span class="badge s-${esc(status)}">${esc(status)}</span>`;
}
