// The import page: choose a folder (picker or drop), show what was found, zip and send it,
// wait for the server's analysis, then go to the confirmation page by itself.
import {
  api, errorMessage, format, formatBytes, formatDuration, readConfig, setText, show, sleep,
} from "./common.js";
import { entriesFromDrop, entriesFromInput, selectFiles } from "./selection.js";
import { archiveSize, Uploader, UploadFailed } from "./upload.js";

const config = readConfig();
const S = config.strings;
const lang = document.documentElement.lang || "it";
const $ = (id) => document.getElementById(id);

let selection = null;
let chosenEntries = null; // what the operator chose, kept to pick one medium of several
let current = null; // {id, total}: the import being sent, kept to resume after a failure
let busy = false;

function setBusy(value) {
  busy = value;
  for (const id of ["choose-folder", "send"]) $(id).disabled = value;
  $("drop-zone").setAttribute("aria-disabled", String(value));
}

function fail(message) {
  setText($("error"), message);
  show($("error"));
}

// While the study travels, the history and the import methods make way for the bars: at
// 1366×768 they would push the progress below the fold (and they are disabled meanwhile).
function setSending(value) {
  for (const id of ["history", "methods"]) if ($(id)) show($(id), !value);
}

/** The API's error text; an expired launch says what the manual says to do (§6). */
function reasonOf(data, status) {
  const code = data && data.error && data.error.code;
  if (status === 401 || code === "token_not_found_or_expired") return S.tokenExpired;
  return errorMessage(data, `HTTP ${status}`);
}

function li(text, className = "") {
  const item = document.createElement("li");
  item.textContent = text;
  if (className) item.className = className;
  return item;
}

// --- choosing ------------------------------------------------------------------------------

async function choose(entriesPromise) {
  if (busy) return;
  show($("error"), false);
  show($("progress"), false);
  show($("send"), false);
  show($("summary"));
  setText($("summary-counts"), S.reading);
  setBusy(true);
  try {
    chosenEntries = await entriesPromise;
    setText($("chosen-name"), chosenEntries.label || "");
    show($("chosen"), Boolean(chosenEntries.label));
    await select();
  } catch (error) {
    console.error(error);
    fail(String(error.message || error));
  } finally {
    setBusy(false);
  }
}

async function select(medium) {
  for (const id of ["summary-mode", "summary-warnings", "summary-patients"]) $(id).replaceChildren();
  selection = await selectFiles(chosenEntries, { medium });
  current = null; // new files: a new import
  renderSummary(selection);
}

function dicomCount(sel) {
  const images = sel.files.length - (sel.documents || 0);
  return sel.mode === "dicomdir" ? images - 1 : images;
}

function renderSummary(sel) {
  const count = dicomCount(sel);
  renderMedia(sel);
  if (sel.mode === "choose-media") {
    setText($("summary-counts"), "");
    setText($("summary-mode"), "");
    return;
  }
  setText($("summary-counts"), count
    ? format(S.counts, { files: sel.files.length, size: formatBytes(sel.totalBytes, lang) })
    : S.nothing);
  const modes = {
    dicomdir: S.modeDicomdir, scan: S.modeScan, "broken-dicomdir": S.modeBrokenDicomdir,
    "unresolved-dicomdir": S.modeUnresolvedDicomdir,
  };
  setText($("summary-mode"), count ? modes[sel.mode] : ""); // "nothing to send" says it all
  const warnings = $("summary-warnings");
  if (sel.others.length) {
    warnings.append(li(format(S.leftOut, { media: sel.others.join(", ") }), "text-danger fw-semibold"));
  }
  if (sel.missing) warnings.append(li(format(S.missing, { count: sel.missing }), "text-danger"));
  if (sel.skipped) warnings.append(li(format(S.skipped, { count: sel.skipped })));
  if (sel.documents && count) warnings.append(li(format(S.documents, { count: sel.documents })));
  if (sel.unknown && count) warnings.append(li(format(S.unknown, { count: sel.unknown })));
  renderPatients(sel.patients);
  show($("send"), count > 0);
}

async function pickMedium(name) {
  if (busy) return;
  setBusy(true);
  try {
    await select(name);
  } finally {
    setBusy(false);
  }
}

// Several media in the chosen folder: name them all and ask which one this import sends.
function renderMedia(sel) {
  const box = $("media-choice");
  if (sel.mode !== "choose-media" && !sel.others.length) {
    show(box, false);
    return;
  }
  const names = sel.mode === "choose-media" ? sel.media : [...sel.others];
  const options = $("media-options");
  if (sel.mode === "choose-media") {
    setText($("media-question"), format(S.severalMedia, { count: names.length, media: names.join(", ") }));
    options.replaceChildren(...names.map((name, index) => {
      const wrapper = document.createElement("div");
      wrapper.className = "form-check form-check-inline";
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name: "medium", id: `medium-${index}`, value: name,
        className: "form-check-input media-option" });
      input.addEventListener("change", () => pickMedium(name));
      const label = document.createElement("label");
      Object.assign(label, { htmlFor: input.id, className: "form-check-label", textContent: name });
      wrapper.append(input, label);
      return wrapper;
    }));
  }
  show(box);
}

function renderPatients(patients) {
  const box = $("summary-patients");
  if (!patients.length) return;
  const title = document.createElement("p");
  title.className = "fw-semibold mb-1 mt-2";
  title.textContent = S.patientsTitle;
  const list = document.createElement("ul");
  list.id = "dicomdir-patients";
  for (const p of patients) {
    const item = li(format(S.patientLine, {
      name: p.name || "—", id: p.id || "—",
      birth: p.birthDate ? format(S.born, { date: p.birthDate }) : S.noBirthDate,
    }), "patient");
    const studies = document.createElement("ul");
    for (const s of p.studies) {
      studies.append(li(format(S.studyLine, {
        date: s.date, description: s.description || "—", accession: s.accession || "—",
        modalities: s.modalities.join(", "),
      }), "study"));
    }
    item.append(studies);
    list.append(item);
  }
  box.append(title, list);
}

// --- sending -------------------------------------------------------------------------------

function drawBar(prefix, done, total) {
  const percent = total ? Math.min(100, Math.floor((done * 100) / total)) : 0;
  $(`${prefix}-fill`).style.width = `${percent}%`;
  $(`${prefix}-bar`).setAttribute("aria-valuenow", String(percent));
  setText($(`${prefix}-text`), format(S.progress, {
    done: formatBytes(done, lang), total: formatBytes(total, lang), percent,
  }));
}

// The zip stream reports thousands of chunks, and every drawing costs the page a style, layout
// and paint pass (and Chromium a hit test for the pointer): during an upload the page shares
// the machine with the transfer, so the bars are drawn at most every DRAW_EVERY_MS (the end at
// once). 60 drawings a second took the renderer 0.6 CPU-s of a 2 s upload (bench/README.md).
const DRAW_EVERY_MS = 250;
const latest = {};
let scheduled = 0;
let drawnAt = -Infinity;

function drawLatest() {
  scheduled = 0;
  drawnAt = performance.now();
  for (const [name, [d, t]] of Object.entries(latest)) drawBar(name, d, t);
}

function bar(prefix, done, total) {
  latest[prefix] = [done, total];
  if (done >= total) drawBar(prefix, done, total); // the end is drawn at once
  if (scheduled) return;
  const wait = Math.max(0, drawnAt + DRAW_EVERY_MS - performance.now());
  scheduled = setTimeout(() => requestAnimationFrame(drawLatest), wait);
}

// Speed and time left only for a transfer long enough for them to mean something: a small
// medium is sent before the first estimate settles.
const RATE_AFTER_MS = 3000;

function rateMeter(total) {
  const samples = [];
  const started = performance.now();
  return (sent) => {
    const now = performance.now();
    samples.push([now, sent]);
    while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
    const [t0, b0] = samples[0];
    const speed = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
    const eta = speed > 0 ? (total - sent) / speed : NaN;
    setText($("upload-rate"), format(S.rate, { speed: formatBytes(speed, lang), eta: formatDuration(eta) }));
    show($("upload-rate"), now - started >= RATE_AFTER_MS && sent < total);
  };
}

async function startImport(total) {
  if (current && current.total === total) {
    const status = await api("GET", `${config.urls.imports}/${current.id}/archive`);
    if (status.ok) return status.data.received_bytes || 0;
  }
  const created = await api("POST", config.urls.imports, { csrf: config.csrf });
  if (!created.ok) {
    throw new UploadFailed(reasonOf(created.data, created.status), { expired: created.status === 401 });
  }
  current = { id: created.data.id, total };
  return 0;
}

async function send() {
  if (busy || !selection) return;
  setBusy(true);
  setSending(true);
  show($("error"), false);
  show($("upload-rate"), false);
  show($("progress"));
  setText($("status"), "");
  const total = archiveSize(selection.files);
  $("progress").dataset.total = String(total);
  try {
    if (total > config.maxArchiveBytes) {
      throw new UploadFailed(format(S.tooLarge, {
        size: formatBytes(total, lang), max: formatBytes(config.maxArchiveBytes, lang),
      }));
    }
    const from = await startImport(total);
    const meter = rateMeter(total);
    const uploader = new Uploader({
      url: `${config.urls.imports}/${current.id}/archive`,
      csrf: config.csrf,
      partBytes: config.partBytes,
      total,
      onZipped: (n) => bar("zip", n, total),
      onSent: (n) => { bar("upload", n, total); meter(n); },
      onRetry: (attempt, max, seconds) => setText($("status"), format(S.retrying, { attempt, max, seconds })),
    });
    bar("zip", 0, total);
    bar("upload", from, total);
    await uploader.run(selection.files, from);
    setText($("status"), S.waiting);
    await waitForAnalysis(current.id);
  } catch (error) {
    console.error(error);
    const id = current ? current.id : "—";
    fail(error instanceof UploadFailed && error.network
      ? format(S.failedNetwork, { id })
      : error.expired ? S.tokenExpired : format(S.refused, { reason: error.message, id }));
    setSending(false);
    setBusy(false);
  }
}

async function waitForAnalysis(id) {
  for (;;) {
    const answer = await api("GET", `${config.urls.imports}/${id}`).catch(() => null);
    if (answer && answer.status === 401) {
      fail(S.tokenExpired);
      setBusy(false);
      return;
    }
    const state = answer && answer.ok ? answer.data.state : null;
    if (state === "awaiting_confirmation" || state === "cancelled") {
      busy = false;
      window.location.assign(config.urls.confirmation.replace("{id}", String(id)));
      return;
    }
    if (state === "failed") {
      const reason = errorMessage({ error: answer.data.error }, "");
      fail(format(S.analysisFailed, { reason, id }));
      current = null;
      setSending(false);
      setBusy(false);
      return;
    }
    if (state === "analysing") setText($("status"), S.analysing);
    await sleep(1000);
  }
}

// --- wiring --------------------------------------------------------------------------------

$("choose-folder").addEventListener("click", () => $("folder-input").click());
$("folder-input").addEventListener("change", (e) => {
  choose(Promise.resolve(entriesFromInput(e.target.files)));
  e.target.value = "";
});
$("files-input").addEventListener("change", (e) => {
  choose(Promise.resolve(entriesFromInput(e.target.files)));
  e.target.value = "";
});
$("send").addEventListener("click", send);

// "Importazioni Precedenti": the latest rows, the others on request.
const more = $("history-more");
if (more) {
  const label = more.textContent;
  more.addEventListener("click", () => {
    const open = more.getAttribute("aria-expanded") !== "true";
    for (const row of document.querySelectorAll("#history .history-older")) row.hidden = !open;
    more.setAttribute("aria-expanded", String(open));
    setText(more, open ? more.dataset.less : label);
  });
}

const zone = $("drop-zone");
zone.addEventListener("click", () => $("files-input").click());
zone.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    $("files-input").click();
  }
});
zone.addEventListener("dragover", (e) => {
  e.preventDefault();
  zone.classList.add("drag-over");
});
zone.addEventListener("dragleave", () => zone.classList.remove("drag-over"));
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("drag-over");
  choose(entriesFromDrop(e.dataTransfer));
});
window.addEventListener("beforeunload", (e) => {
  if (busy) e.preventDefault();
});
