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
  for (const id of ["summary-mode", "summary-warnings", "summary-patients"]) $(id).replaceChildren();
  setBusy(true);
  try {
    selection = await selectFiles(await entriesPromise);
    current = null; // new files: a new import
    renderSummary(selection);
  } catch (error) {
    console.error(error);
    fail(String(error.message || error));
  } finally {
    setBusy(false);
  }
}

function dicomCount(sel) {
  return sel.mode === "dicomdir" ? sel.files.length - 1 : sel.files.length;
}

function renderSummary(sel) {
  const count = dicomCount(sel);
  setText($("summary-counts"), count
    ? format(S.counts, { files: sel.files.length, size: formatBytes(sel.totalBytes, lang) })
    : S.nothing);
  const modes = { dicomdir: S.modeDicomdir, scan: S.modeScan, "broken-dicomdir": S.modeBrokenDicomdir };
  setText($("summary-mode"), modes[sel.mode]);
  const warnings = $("summary-warnings");
  if (sel.missing) warnings.append(li(format(S.missing, { count: sel.missing }), "text-danger"));
  if (sel.skipped) warnings.append(li(format(S.skipped, { count: sel.skipped })));
  if (sel.unknown) warnings.append(li(format(S.unknown, { count: sel.unknown })));
  renderPatients(sel.patients);
  show($("send"), count > 0);
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
    const item = li(format(S.patientLine, { name: p.name || "—", id: p.id || "—", birth: p.birthDate || "—" }), "patient");
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

// The zip stream reports thousands of chunks: draw at most once a frame.
const latest = {};
let frame = 0;

function bar(prefix, done, total) {
  latest[prefix] = [done, total];
  if (done >= total) drawBar(prefix, done, total); // the end is drawn at once
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    for (const [name, [d, t]] of Object.entries(latest)) drawBar(name, d, t);
  });
}

function rateMeter(total) {
  const samples = [];
  return (sent) => {
    const now = performance.now();
    samples.push([now, sent]);
    while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
    const [t0, b0] = samples[0];
    const speed = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
    const eta = speed > 0 ? (total - sent) / speed : NaN;
    setText($("upload-rate"), format(S.rate, { speed: formatBytes(speed, lang), eta: formatDuration(eta) }));
  };
}

async function startImport(total) {
  if (current && current.total === total) {
    const status = await api("GET", `${config.urls.imports}/${current.id}/archive`);
    if (status.ok) return status.data.received_bytes || 0;
  }
  const created = await api("POST", config.urls.imports, { csrf: config.csrf });
  if (!created.ok) throw new UploadFailed(errorMessage(created.data, `HTTP ${created.status}`));
  current = { id: created.data.id, total };
  return 0;
}

async function send() {
  if (busy || !selection) return;
  setBusy(true);
  show($("error"), false);
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
      : format(S.refused, { reason: error.message, id }));
    setBusy(false);
  }
}

async function waitForAnalysis(id) {
  for (;;) {
    const answer = await api("GET", `${config.urls.imports}/${id}`).catch(() => null);
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
