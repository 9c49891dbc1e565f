// Shared helpers of the pages: the JSON config block, message formatting, API calls.
// Every value shown on a page goes through textContent, never innerHTML: DICOM and RIS data
// may hold markup.

/** The page's configuration, rendered by the server as JSON (no inline script under CSP). */
export function readConfig() {
  return JSON.parse(document.getElementById("page-config").textContent);
}

/** "{name} text" with params filled in; unknown placeholders stay visible. */
export function format(template, params = {}) {
  return template.replace(/\{(\w+)\}/g, (all, key) => (key in params ? String(params[key]) : all));
}

export function show(element, visible = true) {
  element.hidden = !visible;
}

export function setText(element, text) {
  element.textContent = text;
}

/** A JSON API call with the page's cookie; state changes carry the CSRF header. */
export async function api(method, url, { csrf, json } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

/** The Italian (or English) message of an API error answer. */
export function errorMessage(data, fallback) {
  return (data && data.error && data.error.message) || fallback;
}

export function formatBytes(bytes, lang) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 ? 0 : 1;
  return `${value.toLocaleString(lang, { maximumFractionDigits: digits })} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** ISO timestamp → local "dd/mm/yyyy hh:mm:ss", as the server renders it. */
export function formatMoment(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n) => String(n).padStart(2, "0");
  return `${p(d.getDate())}/${p(d.getMonth() + 1)}/${d.getFullYear()} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
