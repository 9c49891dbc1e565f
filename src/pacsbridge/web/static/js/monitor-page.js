// The monitor: polls the progress and the audit log every few seconds, updates the phases in
// place (textContent only), stops at the final state, and shows "Timeout" with the support id
// when nothing has changed for `timeoutSeconds`.
import { api, format, formatMoment, readConfig, setText, show, sleep } from "./common.js";

const config = readConfig();
const S = config.strings;
const $ = (id) => document.getElementById(id);
const BADGE_CLASSES = new Set(Object.values(S.badges).flatMap((c) => c.split(" ")));
const FINAL_BADGES = { completed: "text-bg-success", failed: "text-bg-danger", cancelled: "text-bg-secondary" };

let lastSnapshot = null;
let lastChange = Date.now();
let lastChangeTime = new Date();

function setBadge(element, classes) {
  for (const c of [...element.classList]) {
    if (BADGE_CLASSES.has(c) || c.startsWith("text-bg-")) element.classList.remove(c);
  }
  element.classList.add(...classes.split(" "));
}

function phaseText(phase) {
  const generic = S.states[phase.state];
  if (generic) return format(generic, { attempts: phase.attempts_left });
  return phase.message || "";
}

function renderPhases(progress) {
  for (const phase of progress.phases) {
    const row = document.querySelector(`tr[data-phase="${CSS.escape(phase.phase)}"]`);
    if (!row) continue;
    const badge = row.querySelector(".phase-state");
    setText(badge, phaseText(phase));
    setBadge(badge, S.badges[phase.state] || "text-bg-secondary");
    setText(row.querySelector(".phase-started"), formatMoment(phase.started_at));
    setText(row.querySelector(".phase-ended"), formatMoment(phase.ended_at));
    setText(row.querySelector(".phase-attempts"), phase.attempts_left ?? "");
  }
  const final = $("final");
  const state = progress.state;
  const reason = (progress.error && progress.error.message) || "";
  setText(final, format(S.finals[state] || S.finals.running, { reason }));
  setBadge(final, FINAL_BADGES[state] || "text-bg-primary");
  final.dataset.state = state;
}

function renderEvents(events) {
  const body = document.querySelector("#events tbody");
  const known = new Set([...body.querySelectorAll("tr")].map((r) => r.dataset.eventId));
  for (const e of events) {
    if (known.has(String(e.id))) continue;
    const row = document.createElement("tr");
    row.dataset.eventId = String(e.id);
    const phase = e.details && e.details.phase;
    const cells = [formatMoment(e.at), e.kind, e.outcome || "", e.message || e.code || ""];
    cells.forEach((value, index) => {
      const cell = document.createElement("td");
      if (index === 1) {
        const code = document.createElement("code");
        code.textContent = value;
        cell.append(code);
        if (phase) cell.append(` – ${S.phases[phase] || phase}`);
      } else cell.textContent = value;
      row.append(cell);
    });
    body.append(row);
  }
}

function checkTimeout(finished) {
  const silent = (Date.now() - lastChange) / 1000;
  const timedOut = !finished && silent >= config.timeoutSeconds;
  if (timedOut) {
    const time = lastChangeTime.toLocaleTimeString(document.documentElement.lang || "it");
    setText($("timeout"), format(S.timeout, { seconds: Math.round(silent), time, id: config.importId }));
  }
  show($("timeout"), timedOut);
}

async function poll() {
  for (;;) {
    const [progress, events] = await Promise.all([
      api("GET", config.urls.progress).catch(() => null),
      api("GET", config.urls.events).catch(() => null),
    ]);
    const online = progress && progress.ok;
    show($("offline"), !online);
    if (!online) setText($("offline"), S.offline);
    let finished = false;
    if (online) {
      const snapshot = JSON.stringify(progress.data);
      if (snapshot !== lastSnapshot) {
        lastSnapshot = snapshot;
        lastChange = Date.now();
        lastChangeTime = new Date();
      }
      renderPhases(progress.data);
      finished = S.finalStates.includes(progress.data.state);
    }
    if (events && events.ok) renderEvents(events.data.events || []);
    checkTimeout(finished);
    if (finished) return;
    await sleep(config.pollSeconds * 1000);
  }
}

poll();
