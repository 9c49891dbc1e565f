// Zip in the browser and upload in fixed-size parts, streaming together with bounded memory.
//
// zip-writer.js writes a STORE zip (docs/engineering-notes.md: deflate in the browser is slower
// than a hospital LAN) with ZIP64 when needed, as pieces: headers, and each file as its own
// Blob. We cut those pieces into parts of `partBytes` and PUT each one with
// `Content-Range: bytes a-b/total`, two at a time, while the next part is being cut. A part
// refers to slices of the files themselves, not to copies of their bytes, and the page reads
// none of them: the CRC-32s are left to the server (zip-writer.js, docs/operator-pages.md).
// The memory held is a few small headers whatever the media size.
//
// The total is sent on every part: imports/upload.py treats a part without a total ("/*") as
// the last one, so the exact zip size is computed up front (zipLength: file names and sizes
// are known before reading any byte).
//
// Resume: the zip is deterministic (fixed order, fixed modification date), so the same bytes
// can always be produced again. After a network error or a 5xx we ask the server how many
// bytes it holds (GET .../archive), and send again from there: from the part still in memory
// when possible, else by cutting the zip again from the start and skipping what the server
// has. A limited number of attempts with growing pauses, then a clear message.
import { sleep } from "./common.js";
import { layout, zipLength, zipPieces } from "./zip-writer.js";

/** Every entry gets the same date: the zip must be byte-identical when produced again. */
const FIXED_DATE = new Date(2000, 0, 1, 0, 0, 0);
export const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000, 30000];
const RETRIABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504, 507]);
const MAX_RESTARTS = 3;
/** Parts travelling at once: the next PUT is on its way before the previous answer. */
const IN_FLIGHT = 2;

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

/** The zip's entries: each file under its path, its data the File itself. */
function zipLayout(files) {
  return layout(files.map((f) => ({ name: f.name, size: f.file.size, blob: f.file })), FIXED_DATE);
}

export function archiveSize(files) {
  return zipLength(zipLayout(files).entries);
}

const sizeOf = (piece) => (piece instanceof Blob ? piece.size : piece.length);
/** Bytes a..b of a piece of a part: a Blob (a file or its slice) or a typed array (headers). */
const cut = (piece, a, b) => (piece instanceof Blob ? piece.slice(a, b) : piece.subarray(a, b));

/**
 * Parts of the zip from byte `from` on, as {start, blob}; `onZipped(position)` as it grows.
 * A part is a Blob, not a typed array: Chromium uploads an 8 MiB ArrayBuffer body at about
 * 8 MB/s but a Blob body at hundreds of MB/s (measured here, loopback, HTTP/1.1). File data
 * go in as slices of the files themselves, so a part costs no copy of them.
 */
export async function* zipParts(files, from, partBytes, onZipped) {
  let position = 0;
  let pending = [];
  let size = 0;
  let start = from;
  for (let piece of zipPieces(zipLayout(files))) {
    let length = sizeOf(piece);
    position += length;
    onZipped(position);
    if (position <= from) continue;
    const skip = from - (position - length);
    if (skip > 0) {
      piece = cut(piece, skip, length);
      length -= skip;
    }
    while (size + length >= partBytes) {
      const n = partBytes - size;
      pending.push(cut(piece, 0, n));
      yield { start, blob: new Blob(pending) };
      start += partBytes;
      pending = [];
      size = 0;
      piece = cut(piece, n, length);
      length -= n;
    }
    if (length) {
      pending.push(piece);
      size += length;
    }
  }
  if (size) yield { start, blob: new Blob(pending) };
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

  /**
   * Zip and send: IN_FLIGHT parts travel at once while the next one is zipped. The server
   * writes parts in order and holds a part that comes early until the one before it is in
   * (imports/upload.py), so no round trip is lost between two parts. A part whose early PUT
   * fails is sent again only once the part before it is settled, by `sendPart`, which knows
   * how to resume from what the server holds.
   */
  async stream(files, from) {
    const parts = zipParts(files, from, this.partBytes, (n) => this.onZipped(n));
    const inflight = [];
    const aborts = new Set();
    let previous = Promise.resolve();
    let next = parts.next();
    try {
      for (;;) {
        const { value: part, done } = await next;
        if (done) break;
        previous = this.pipelined(part, previous, aborts);
        previous.catch(() => {});
        inflight.push(previous);
        next = parts.next(); // zip the next part while these travel
        next.catch(() => {});
        if (inflight.length >= IN_FLIGHT) await inflight.shift();
      }
      for (const sending of inflight) await sending;
    } finally {
      for (const abort of aborts) abort.abort();
      await parts.return();
    }
  }

  /**
   * Send `part` at once; settles after `previous`. A failed early PUT goes on in `sendPart`:
   * a network error or a 5xx as that PUT's outcome (the part's first failure, said on the
   * page), a 409 by sending the part again now that the one before it is in.
   */
  async pipelined(part, previous, aborts) {
    const end = part.start + part.blob.size;
    const abort = new AbortController();
    aborts.add(abort);
    let outcome;
    try {
      outcome = await this.put(part, part.start, end, abort.signal);
    } finally {
      aborts.delete(abort);
    }
    await previous;
    if (outcome.done) return;
    // A 409 said where the server stood before the previous part landed: ask again.
    await this.sendPart(part, outcome.received === undefined ? outcome : undefined);
  }

  /** Send `part` until the server holds it; `first` is the outcome of a PUT already made. */
  async sendPart(part, first = undefined) {
    const end = part.start + part.blob.size;
    let offset = part.start;
    for (let failures = 0; ; ) {
      const outcome = first ?? (await this.put(part, offset, end));
      first = undefined;
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
  async put(part, offset, end, signal = undefined) {
    let response;
    try {
      response = await fetch(this.url, {
        signal,
        method: "PUT",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/zip",
          "Content-Range": `bytes ${offset}-${end - 1}/${this.total}`,
          "X-CSRF-Token": this.csrf,
        },
        body: offset === part.start ? part.blob : part.blob.slice(offset - part.start),
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
