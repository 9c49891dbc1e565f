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

// The same words as the server's first rendering (web/pages/strings.py phase_text): the
// progress JSON says each phase's message in the page's language (Accept-Language).
function phaseText(phase) {
  return phase.message || "";
}

const CLOSING_CLASSES = new Set(Object.values(S.closingCss));

/** The closing text of the state: "may be closed" only while the work goes on by itself. */
function setClosing(state) {
  const key = state in S.closing ? state : "running";
  const hint = $("close-hint");
  if (hint.dataset.state === key) return;
  setText($("close-text"), S.closing[key]);
  for (const c of [...hint.classList]) if (CLOSING_CLASSES.has(c)) hint.classList.remove(c);
  hint.classList.add(S.closingCss[key]);
  hint.dataset.state = key;
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
    const counts = S.attemptStates.includes(phase.state);
    setText(row.querySelector(".phase-attempts"), counts ? (phase.attempts_left ?? "") : "");
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
    const kind = (S.events[e.kind] || e.kind) + (phase ? ` – ${S.phases[phase] || phase}` : "");
    const outcome = S.outcomes[e.outcome] || e.outcome || "";
    const cells = [formatMoment(e.at), kind, outcome, e.message || ""];
    const classes = ["text-nowrap", "event-kind", "event-outcome", ""];
    cells.forEach((value, index) => {
      const cell = document.createElement("td");
      cell.textContent = value;
      if (classes[index]) cell.className = classes[index];
      row.append(cell);
    });
    row.cells[1].dataset.kind = e.kind;
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
  return timedOut;
}

async function poll() {
  for (;;) {
    const [progress, events] = await Promise.all([
      api("GET", config.urls.progress).catch(() => null),
      api("GET", config.urls.events).catch(() => null),
    ]);
    if (progress && progress.status === 401) { // the launch expired: polling cannot go on
      setText($("offline"), S.tokenExpired);
      show($("offline"));
      return;
    }
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
    const timedOut = checkTimeout(finished);
    if (timedOut) setClosing("timeout");
    else if (online) setClosing(progress.data.state);
    if (finished) return;
    await sleep(config.pollSeconds * 1000);
  }
}

poll();
