// CONFERMA IMPORT STUDI: confirm (with a second dialog when the patient does not fully match)
// or cancel, through the JSON API with the CSRF header; then the monitor or the cancel page.
// "Riprova controllo" repeats the analysis and the PACS duplicate check (POST .../recheck)
// when the PACS did not answer, and reloads the page when the server has finished.
import { api, errorMessage, format, readConfig, setText, show, sleep } from "./common.js";

const config = readConfig();
const S = config.strings;
const $ = (id) => document.getElementById(id);

function selected() {
  return [...document.querySelectorAll(".study-select")].filter((b) => b.checked).map((b) => b.value);
}

// The media's documents the operator ticked (none by default): wrapped into the first study.
function documents() {
  return [...document.querySelectorAll(".document-select")].filter((b) => b.checked).map((b) => b.value);
}

function lock(value) {
  for (const id of ["confirm", "cancel", "confirm-anyway", "recheck"]) {
    if ($(id)) $(id).disabled = value;
  }
}

function failed(data, status, template = S.failed) {
  setText($("action-status"), "");
  const expired = status === 401 || (data && data.error && data.error.code === "token_not_found_or_expired");
  setText($("action-error"), expired
    ? S.tokenExpired : format(template, { reason: errorMessage(data, `HTTP ${status}`) }));
  show($("action-error"));
  lock(false);
}

// acknowledged: the operator passed the second dialog; the API refuses a differing patient
// without it (identity_acknowledged).
async function confirmImport(acknowledged = false) {
  lock(true);
  show($("action-error"), false);
  setText($("action-status"), S.confirming);
  const answer = await api("POST", config.urls.confirm, {
    csrf: config.csrf,
    json: { study_instance_uids: selected(), identity_acknowledged: acknowledged, document_keys: documents() },
  }).catch(() => ({ ok: false, status: 0, data: {} }));
  if (answer.ok) window.location.assign(config.urls.monitor);
  else failed(answer.data, answer.status);
}

async function cancelImport() {
  lock(true);
  show($("action-error"), false);
  setText($("action-status"), S.cancelling);
  const answer = await api("POST", config.urls.cancel, { csrf: config.csrf })
    .catch(() => ({ ok: false, status: 0, data: {} }));
  if (answer.ok) window.location.assign(config.urls.cancelled);
  else failed(answer.data, answer.status);
}

async function recheck() {
  lock(true);
  show($("action-error"), false);
  setText($("action-status"), S.rechecking);
  const answer = await api("POST", config.urls.recheck, { csrf: config.csrf })
    .catch(() => ({ ok: false, status: 0, data: {} }));
  if (!answer.ok) {
    failed(answer.data, answer.status, S.recheckFailed);
    return;
  }
  if (answer.data.state === "analysing") await waitForAnalysis();
  else window.location.reload();
}

function onConfirm() {
  const button = $("confirm");
  if (button.dataset.match === "true") {
    confirmImport();
    return;
  }
  globalThis.bootstrap.Modal.getOrCreateInstance($("mismatch-dialog")).show();
}

async function waitForAnalysis() {
  for (;;) {
    await sleep(1500);
    const answer = await api("GET", config.urls.self).catch(() => null);
    const state = answer && answer.ok ? answer.data.state : null;
    if (state && !["created", "uploading", "analysing"].includes(state)) {
      window.location.reload();
      return;
    }
  }
}

if ($("confirm")) {
  $("confirm").addEventListener("click", onConfirm);
  for (const box of document.querySelectorAll(".study-select")) {
    box.addEventListener("change", () => {
      $("confirm").disabled = selected().length === 0;
    });
  }
}
if ($("confirm-anyway")) {
  $("confirm-anyway").addEventListener("click", () => {
    globalThis.bootstrap.Modal.getOrCreateInstance($("mismatch-dialog")).hide();
    confirmImport(true);
  });
}
if ($("cancel")) $("cancel").addEventListener("click", cancelImport);
if ($("recheck")) $("recheck").addEventListener("click", recheck);
if ($("waiting")) waitForAnalysis();
