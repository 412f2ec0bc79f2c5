// Dates and durations. Absolute dates follow the browser's locale and time
// zone; relative times ("há 3 min") follow the page's language.

import { lang } from "./i18n.js";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

const toDate = (v) => (v instanceof Date ? v : new Date(v));
const valid = (d) => !Number.isNaN(d.getTime());

/** clock gives the time of day for today's dates, date and time otherwise. */
export function clock(v) {
  if (!v) return "";
  const d = toDate(v);
  if (!valid(d)) return "";
  return d.toDateString() === new Date().toDateString() ? timeOnly.format(d) : dateTime.format(d);
}

/** fullDate is for tooltips: weekday, date, time and time zone. */
export function fullDate(v) {
  const d = toDate(v);
  return valid(d) ? full.format(d) : "";
}

/** relative says how long ago (or from now) v is, in the page's language. */
export function relative(v, now = Date.now()) {
  const d = toDate(v);
  if (!valid(d)) return "";
  const secs = Math.round((d.getTime() - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const abs = Math.abs(secs);
  if (abs < 5) return rtf.format(0, "second");
  if (abs < 60) return rtf.format(secs, "second");
  if (abs < 3600) return rtf.format(Math.round(secs / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(secs / 3600), "hour");
  return rtf.format(Math.round(secs / 86400), "day");
}

/** duration writes seconds as 2d 03h, 1h05m, 4m07s or 12s. */
export function duration(secs) {
  secs = Math.max(0, Math.floor(secs));
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60), s = secs % 60;
  const p = (n) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${p(h)}h`;
  if (h > 0) return `${h}h${p(m)}m`;
  if (m > 0) return `${m}m${p(s)}s`;
  return `${s}s`;
}

/** stopwatch writes seconds as 0:07, 12:34 or 1:02:03. */
export function stopwatch(secs) {
  secs = Math.max(0, Math.floor(secs));
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  const p = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${p(m)}:${p(s)}` : `${m}:${p(s)}`;
}

/** bytes writes an octet count with a unit (SI). */
export function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toLocaleString(lang, { maximumFractionDigits: 1 })} ${units[i]}`;
}

/** timeEl is a <time> with the clock time, the full date as tooltip. */
export function timeAttrs(v) {
  return { datetime: toDate(v).toISOString(), title: fullDate(v) };
}
