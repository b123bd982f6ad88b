// Shared worker logic: the live merge rule (newest version wins) and the idle countdown, which
// mirrors the server's idle policy (functions/cmlcm/domain/idle.py).

import { duration, ms } from "./format.js";

export const STATUSES = [
  "pending", "provisioning", "running", "stopping", "stopped", "starting", "terminating", "terminated", "failed", "unknown",
];

/** Keep the newer of two views of a worker (by version; equal versions: the incoming one). */
export function newer(current, incoming) {
  if (!current) return incoming;
  return (incoming.version ?? 0) >= (current.version ?? 0) ? incoming : current;
}

/** Last sign of use, as the idle policy sees it. */
export function idleSince(worker) {
  const activity = ms(worker.metrics && worker.metrics.last_activity_at);
  const changed = ms(worker.status_changed_at);
  return Math.max(activity ?? -Infinity, changed ?? -Infinity);
}

/** { text, sortValue } of the time left before the idle policy pauses the worker: the same
 * rule, in the same order, as idle_status() on the server (GET /workers/{id}/policy explains it). */
export function idleCountdown(worker, settings, now = Date.now()) {
  if (!settings) return { text: "…", sortValue: Infinity };
  if (worker.status !== "running") {
    const by = worker.policy_stopped_by;
    return { text: by ? (by === "idle" ? "paused (idle)" : "stopped by schedule") : "—", sortValue: Infinity };
  }
  if (!settings.idle_detection_enabled || !worker.idle_detection_enabled) return { text: "off", sortValue: Infinity };
  const m = worker.metrics;
  if (worker.service_status !== "available" || !m || m.nodes_running === null || m.nodes_running === undefined) {
    return { text: "waiting for CML", sortValue: Infinity - 1 };
  }
  if (m.nodes_running > 0) return { text: `in use (${m.nodes_running} nodes)`, sortValue: 1e15 };
  const busy = settings.idle_cpu_busy_percent;
  if (busy && m.cpu_percent !== null && m.cpu_percent !== undefined && m.cpu_percent >= busy) {
    return { text: "in use (CPU)", sortValue: 1e15 };
  }
  const snooze = ms(worker.snoozed_until);
  let left = idleSince(worker) + settings.idle_timeout_minutes * 60_000 - now;
  if (snooze !== null && snooze > now) {
    left = Math.max(left, snooze - now);
    return { text: `snoozed, ${duration(left)}`, sortValue: left };
  }
  if (left <= 0) return { text: "pause due", sortValue: 0 };
  return { text: duration(left), sortValue: left };
}

/** Where the idle policy's "last activity" came from, for people. */
export const ACTIVITY_SOURCES = {
  cml_events: "CML activity (logins, lab actions)",
  labs_running: "running labs",
  cpu: "CPU use",
  status_change: "started or status change",
};

/** Licence summary for the fleet table. */
export function licenceText(worker) {
  const l = worker.licence;
  if (l && l.operation_state === "pending") return `${l.operation}…`;
  if (l && l.operation_state === "failed") return `${l.operation} failed`;
  if (l && l.registration_status) return l.registration_status.toLowerCase().replace(/_/g, " ");
  const licensed = worker.metrics && worker.metrics.licensed;
  if (licensed === true) return "licensed";
  if (licensed === false) return "unlicensed";
  return "—";
}

/** A failure reason for people: a Lambda error document inside it is reduced to its errorMessage. */
export function readableReason(reason) {
  const text = String(reason || "");
  const start = text.indexOf("{");
  if (start < 0) return text;
  try {
    const doc = JSON.parse(text.slice(start));
    if (doc && doc.errorMessage) return `${text.slice(0, start)}${doc.errorMessage}`.trim();
  } catch {
    /* a truncated document: find the message by hand */
    const match = text.match(/"errorMessage":"((?:[^"\\]|\\.)*)"/);
    if (match) return `${text.slice(0, start)}${match[1].replace(/\\"/g, '"')}`.trim();
  }
  return text;
}
