// Zip in the browser and upload in fixed-size parts, streaming together with bounded memory.
//
// client-zip writes a STORE zip (docs/engineering-notes.md: deflate in the browser is slower than a hospital
// LAN) with ZIP64 when needed, as a ReadableStream. We read that stream into parts of
// `partBytes` and PUT each one with `Content-Range: bytes a-b/total` while the next part is
// being zipped: about two parts are held at a time whatever the media size.
//
// The total is sent on every part: imports/upload.py treats a part without a total ("/*") as
// the last one, so the exact zip size is computed up front with client-zip's predictLength
// (file names and sizes are known before reading any byte).
//
// Resume: the zip is deterministic (fixed order, fixed modification date), so the same bytes
// can always be produced again. After a network error or a 5xx we ask the server how many
// bytes it holds (GET .../archive), and send again from there: from the part still in memory
// when possible, else by zipping again from the start and skipping what the server has.
// A limited number of attempts with growing pauses, then a clear message.
import { makeZip, predictLength } from "../vendor/client-zip-2.5.1/index.js";
import { sleep } from "./common.js";

/** Every entry gets the same date: the zip must be byte-identical when produced again. */
const FIXED_DATE = new Date(2000, 0, 1, 0, 0, 0);
export const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000, 30000];
const RETRIABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504, 507]);
const MAX_RESTARTS = 3;

export class UploadFailed extends Error {
  constructor(message, { network = false, expired = false } = {}) {
    super(message);
    this.network = network;
    this.expired = expired; // the launch token expired: only a new launch from the RIS helps
  }
}

class Restart extends Error {
  constructor(from) {
    super(`restart from ${from}`);
    this.from = from;
  }
}

function zipInputs(files) {
  return files.map((f) => ({ input: f.file, name: f.name, lastModified: FIXED_DATE, size: f.file.size }));
}

export function archiveSize(files) {
  return Number(predictLength(zipInputs(files)));
}

/**
 * Parts of the zip from byte `from` on, as {start, blob}; `onZipped(position)` as it grows.
 * A part is a Blob, not a typed array: Chromium uploads an 8 MiB ArrayBuffer body at about
 * 8 MB/s but a Blob body at hundreds of MB/s (measured here, loopback, HTTP/1.1).
 */
async function* zipParts(files, from, partBytes, onZipped) {
  const reader = makeZip(zipInputs(files)).getReader();
  let position = 0;
  let pending = [];
  let size = 0;
  let start = from;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let chunk = value;
      position += chunk.length;
      onZipped(position);
      if (position <= from) continue;
      if (position - chunk.length < from) chunk = chunk.subarray(from - (position - chunk.length));
      while (size + chunk.length >= partBytes) {
        const n = partBytes - size;
        pending.push(chunk.subarray(0, n));
        yield { start, blob: new Blob(pending) };
        start += partBytes;
        pending = [];
        size = 0;
        chunk = chunk.subarray(n);
      }
      if (chunk.length) {
        pending.push(chunk);
        size += chunk.length;
      }
    }
    if (size) yield { start, blob: new Blob(pending) };
  } finally {
    reader.cancel().catch(() => {});
  }
}

export class Uploader {
  /**
   * @param {object} options - url (the archive URL), csrf, partBytes, total,
   *   onZipped(bytes), onSent(bytes), onRetry(attempt, max, seconds)
   */
  constructor(options) {
    Object.assign(this, options);
    this.sent = 0;
  }

  /** Upload `files` as one zip from byte `from` (0, or what the server already holds). */
  async run(files, from = 0) {
    let restarts = 0;
    for (;;) {
      try {
        await this.stream(files, from);
        return;
      } catch (error) {
        if (!(error instanceof Restart) || restarts >= MAX_RESTARTS) throw error;
        restarts += 1;
        from = error.from;
      }
    }
  }

  async stream(files, from) {
    const parts = zipParts(files, from, this.partBytes, (n) => this.onZipped(n));
    let next = parts.next();
    try {
      for (;;) {
        const { value: part, done } = await next;
        if (done) return;
        next = parts.next(); // zip the next part while this one travels
        next.catch(() => {});
        await this.sendPart(part);
      }
    } finally {
      await parts.return();
    }
  }

  async sendPart(part) {
    const end = part.start + part.blob.size;
    let offset = part.start;
    for (let failures = 0; ; ) {
      const outcome = await this.put(part, offset, end);
      if (outcome.done) return;
      if (outcome.received !== undefined && failures === 0) {
        // 409: the server holds a different length; place ourselves once without waiting
        offset = this.placeIn(part, outcome.received, end);
        if (offset === end) return;
        failures += 1;
        continue;
      }
      if (failures >= RETRY_DELAYS_MS.length) throw new UploadFailed("network", { network: true });
      const delay = RETRY_DELAYS_MS[failures];
      failures += 1;
      this.onRetry(failures, RETRY_DELAYS_MS.length, Math.round(delay / 1000));
      await sleep(delay);
      const received = await this.received();
      if (received === null) continue;
      offset = this.placeIn(part, received, end);
      if (offset === end) return;
    }
  }

  /** Where to go on in this part given what the server holds; Restart when outside it. */
  placeIn(part, received, end) {
    if (received >= end) {
      this.acknowledge(received);
      return end;
    }
    if (received < part.start) throw new Restart(received);
    return received;
  }

  acknowledge(received) {
    this.sent = Math.max(this.sent, received);
    this.onSent(this.sent);
  }

  /** One PUT: {done} on success, {received} on a wrong offset, {} to retry; throws if fatal. */
  async put(part, offset, end) {
    let response;
    try {
      response = await fetch(this.url, {
        method: "PUT",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/zip",
          "Content-Range": `bytes ${offset}-${end - 1}/${this.total}`,
          "X-CSRF-Token": this.csrf,
        },
        body: part.blob.slice(offset - part.start),
      });
    } catch {
      return {}; // network error: ask the server what it has, then retry
    }
    const data = await response.json().catch(() => ({}));
    if (response.ok) {
      this.acknowledge(data.received_bytes ?? end);
      return { done: true };
    }
    const error = data.error || {};
    if (response.status === 409 && Number.isInteger(error.received_bytes)) {
      return { received: error.received_bytes };
    }
    if (RETRIABLE_STATUS.has(response.status)) return {};
    throw new UploadFailed(error.message || `HTTP ${response.status}`, { expired: response.status === 401 });
  }

  /** Bytes the server holds, or null when it cannot be asked right now. */
  async received() {
    try {
      const response = await fetch(this.url, { credentials: "same-origin" });
      if (!response.ok) return null;
      const data = await response.json();
      return Number.isInteger(data.received_bytes) ? data.received_bytes : null;
    } catch {
      return null;
    }
  }
}
