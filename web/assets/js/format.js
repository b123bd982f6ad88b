// Display helpers: the user's locale for dates and numbers, relative times, units, escaping.

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** HTML-escape any value for interpolation into markup. */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** Milliseconds since the epoch of an ISO date (or null). */
export function ms(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/** "3 min ago" / "in 12 min", in the user's locale. */
export function relative(iso, now = Date.now()) {
  const t = ms(iso);
  if (t === null) return "—";
  const diff = (t - now) / 1000;
  const abs = Math.abs(diff);
  if (abs < 45) return rtf.format(Math.round(diff), "second");
  if (abs < 2700) return rtf.format(Math.round(diff / 60), "minute");
  if (abs < 86400 * 1.5) return rtf.format(Math.round(diff / 3600), "hour");
  return rtf.format(Math.round(diff / 86400), "day");
}

/** Full local date and time, for titles and detail views. */
export function absolute(iso) {
  const t = ms(iso);
  return t === null ? "—" : dtf.format(new Date(t));
}

/** A <time> element: relative text, the absolute date as its title. */
export function timeTag(iso, now) {
  if (!iso) return "—";
  return `<time datetime="${esc(iso)}" title="${esc(absolute(iso))}">${esc(relative(iso, now))}</time>`;
}

export function percent(value) {
  return value === null || value === undefined ? "—" : `${nf1.format(value)} %`;
}

export function count(value, unit) {
  if (value === null || value === undefined) return "—";
  return unit ? `${nf0.format(value)} ${unit}` : nf0.format(value);
}

/** A duration in ms as "41 min", "2 h 5 min", "35 s". */
export function duration(msValue) {
  const s = Math.max(0, Math.round(msValue / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

/** A CML health flag: yes, no or unknown. */
export function yesNo(value) {
  if (value === null || value === undefined) return "—";
  return value ? "yes" : "no";
}

/** Bytes as GiB with one decimal ("—" when unknown). */
export function gib(bytes) {
  return bytes === null || bytes === undefined ? "—" : `${nf1.format(bytes / 1024 ** 3)} GiB`;
}
