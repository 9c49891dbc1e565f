// A STORE zip written as pieces: zip headers (typed arrays) and the files themselves (Blobs).
//
// The layout is the one client-zip 2.5.1 writes (PKWARE APPNOTE 6.3.x), byte for byte, so an
// archive is the same whichever of the two made it: every entry has a local header with the
// UTF-8 name flag (bit 11) and the data descriptor flag (bit 3), its bytes stored as they are,
// then a data descriptor with the CRC-32 and the sizes (8-byte sizes when the entry is 4 GiB
// or more: APPNOTE 4.3.9.2); the central directory gives a ZIP64 extra field (APPNOTE 4.5.3)
// to an entry whose size or local header offset does not fit in 32 bits; a ZIP64 end of
// central directory record and locator (APPNOTE 4.3.14-15) follow when any entry or offset
// needed ZIP64, and also when there are more than 65,535 entries (client-zip writes no ZIP64
// record then; APPNOTE 4.4.21-22 wants one: the only case where the two differ).
//
// Why not client-zip itself: it computes CRC-32 a byte at a time, the largest single cost of
// the upload in the page (docs/operator-pages.md), and it can only take the bytes as a stream,
// whereas the upload wants each file as a Blob (a slice of the file, never a copy). Here the
// CRC is slice-by-16 and comes from the caller, one per entry, in order.

const BIG = 0xffffffff; // from here on a size or offset needs ZIP64 (as client-zip decides)
const MAX_ENTRIES = 0xffff;
const TWO_32 = 2 ** 32;

/** CRC-32 (ISO-HDLC, polynomial 0xEDB88320) tables for slice-by-16: table k at k*256. */
const TABLES = (() => {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 16; k++) {
      const previous = t[(k - 1) * 256 + n];
      t[k * 256 + n] = (previous >>> 8) ^ t[previous & 255];
    }
  }
  return t;
})();

/** CRC-32 of `bytes`, going on from `crc` (the CRC of what came before, 0 at the start). */
export function crc32(bytes, crc = 0) {
  const t = TABLES;
  let c = ~crc;
  let i = 0;
  const n = bytes.length;
  // bytewise up to a 4-byte boundary, so the middle can be read as 32-bit words
  while (i < n && (bytes.byteOffset + i) & 3) c = (c >>> 8) ^ t[(c ^ bytes[i++]) & 255];
  const words = (n - i) >>> 4 << 2;
  if (words) {
    const w = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let j = 0; j < words; j += 4) {
      const a = w[j] ^ c;
      const b = w[j + 1];
      const d = w[j + 2];
      const e = w[j + 3];
      c = t[3840 + (a & 255)] ^ t[3584 + ((a >>> 8) & 255)] ^ t[3328 + ((a >>> 16) & 255)] ^
        t[3072 + (a >>> 24)] ^ t[2816 + (b & 255)] ^ t[2560 + ((b >>> 8) & 255)] ^
        t[2304 + ((b >>> 16) & 255)] ^ t[2048 + (b >>> 24)] ^ t[1792 + (d & 255)] ^
        t[1536 + ((d >>> 8) & 255)] ^ t[1280 + ((d >>> 16) & 255)] ^ t[1024 + (d >>> 24)] ^
        t[768 + (e & 255)] ^ t[512 + ((e >>> 8) & 255)] ^ t[256 + ((e >>> 16) & 255)] ^
        t[e >>> 24];
    }
    i += words * 4;
  }
  while (i < n) c = (c >>> 8) ^ t[(c ^ bytes[i++]) & 255];
  return ~c >>> 0;
}

/** MS-DOS time and date (local time, as client-zip writes them). */
function dosDateTime(date) {
  const time = (date.getSeconds() >> 1) | (date.getMinutes() << 5) | (date.getHours() << 11);
  const day = date.getDate() | ((date.getMonth() + 1) << 5) | ((date.getFullYear() - 1980) << 9);
  return [time, day];
}

function set64(view, at, value) {
  view.setUint32(at, value % TWO_32, true);
  view.setUint32(at + 4, Math.floor(value / TWO_32), true);
}

const encoder = new TextEncoder();

/**
 * The entries to write: `files` as {name, size, blob}, names as UTF-8 bytes (a trailing "/"
 * dropped, as client-zip does for a file), sizes as plain numbers (exact up to 2^53).
 */
export function layout(files, date) {
  return {
    date: dosDateTime(date),
    entries: files.map((f) => {
      const name = encoder.encode(String(f.name));
      let end = name.length;
      while (end && name[end - 1] === 47) end -= 1;
      if (!end) throw new Error("Every file must have a name.");
      return { name: name.subarray(0, end), size: Number(f.size), blob: f.blob };
    }),
  };
}

/** Central directory extra field length of an entry: none, offset only, or sizes and offset. */
const extraLength = (size, offset) => (size >= BIG ? 28 : offset >= BIG ? 12 : 0);

/** The end records are ZIP64 when any size or offset is, or there are too many entries. */
const needsZip64 = (anyBig, count, cdOffset, cdSize) =>
  anyBig || cdOffset >= BIG || cdSize >= BIG || count > MAX_ENTRIES;

/** Exact byte length of the zip of `entries` (as `layout` gives them), before any byte is read. */
export function zipLength(entries) {
  let offset = 0;
  let cdSize = 0;
  let anyBig = false;
  for (const { name, size } of entries) {
    const big = size >= BIG;
    cdSize += 46 + name.length + extraLength(size, offset);
    offset += 46 + name.length + size + (big ? 8 : 0);
    anyBig ||= big;
  }
  return offset + cdSize + 22 + (needsZip64(anyBig, entries.length, offset, cdSize) ? 76 : 0);
}

export function localHeader(entry, [time, day]) {
  const bytes = new Uint8Array(30 + entry.name.length);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, 0x504b0304);
  v.setUint32(4, 0x2d000808); // version 4.5; flags: descriptor (bit 3), UTF-8 name (bit 11)
  v.setUint16(10, time, true);
  v.setUint16(12, day, true);
  v.setUint16(26, entry.name.length, true);
  bytes.set(entry.name, 30);
  return bytes;
}

export function descriptor(size, crc) {
  const big = size >= BIG;
  const v = new DataView(new ArrayBuffer(big ? 24 : 16));
  v.setUint32(0, 0x504b0708);
  v.setUint32(4, crc, true);
  if (big) {
    set64(v, 8, size);
    set64(v, 16, size);
  } else {
    v.setUint32(8, size, true);
    v.setUint32(12, size, true);
  }
  return new Uint8Array(v.buffer);
}

export function centralHeader(entry, crc, offset, [time, day]) {
  const { name, size } = entry;
  const extra = extraLength(size, offset);
  const bytes = new Uint8Array(46 + name.length + extra);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, 0x504b0102);
  v.setUint32(4, 0x2d032d00); // made by 4.5 on Unix, needs 4.5
  v.setUint16(8, 0x0808, true);
  v.setUint16(12, time, true);
  v.setUint16(14, day, true);
  v.setUint32(16, crc, true);
  v.setUint32(20, Math.min(BIG, size), true);
  v.setUint32(24, Math.min(BIG, size), true);
  v.setUint16(28, name.length, true);
  v.setUint16(30, extra, true);
  v.setUint16(40, 0o100664, true); // external attributes: a regular file, rw-rw-r--
  v.setUint32(42, Math.min(BIG, offset), true);
  bytes.set(name, 46);
  if (extra) {
    const at = 46 + name.length;
    v.setUint16(at, 1, true); // ZIP64 extended information
    v.setUint16(at + 2, extra - 4, true);
    if (extra === 28) {
      set64(v, at + 4, size);
      set64(v, at + 12, size);
    }
    set64(v, at + extra - 8, offset);
  }
  return bytes;
}

export function endRecords(count, cdOffset, cdSize, anyBig) {
  const zip64 = needsZip64(anyBig, count, cdOffset, cdSize);
  const v = new DataView(new ArrayBuffer(22 + (zip64 ? 76 : 0)));
  let at = 0;
  if (zip64) {
    v.setUint32(0, 0x504b0606);
    set64(v, 4, 44); // size of the rest of the record
    v.setUint32(12, 0x2d032d00);
    set64(v, 24, count);
    set64(v, 32, count);
    set64(v, 40, cdSize);
    set64(v, 48, cdOffset);
    v.setUint32(56, 0x504b0607); // locator
    set64(v, 64, cdOffset + cdSize);
    v.setUint32(72, 1, true); // total number of disks
    at = 76;
  }
  v.setUint32(at, 0x504b0506);
  v.setUint16(at + 8, Math.min(MAX_ENTRIES, count), true);
  v.setUint16(at + 10, Math.min(MAX_ENTRIES, count), true);
  v.setUint32(at + 12, Math.min(BIG, cdSize), true);
  v.setUint32(at + 16, Math.min(BIG, cdOffset), true);
  return new Uint8Array(v.buffer);
}

/**
 * The zip as pieces in order: headers as Uint8Array, each entry's data as its Blob (yielded
 * whole; the caller slices it). `crcs` is an async iterator giving each entry's CRC-32 in
 * order: it is awaited only for the data descriptor, after the entry's data piece, so the
 * caller can compute it while the pieces before are on their way.
 */
export async function* zipPieces({ entries, date }, crcs) {
  const central = [];
  let offset = 0;
  let anyBig = false;
  for (const entry of entries) {
    yield localHeader(entry, date);
    if (entry.size) yield entry.blob;
    const { value: crc, done } = await crcs.next();
    if (done) throw new Error("a CRC-32 is missing");
    yield descriptor(entry.size, crc);
    central.push(centralHeader(entry, crc, offset, date));
    const big = entry.size >= BIG;
    offset += 46 + entry.name.length + entry.size + (big ? 8 : 0);
    anyBig ||= big;
  }
  let cdSize = 0;
  for (const header of central) cdSize += header.length;
  yield new Blob(central); // one piece for the whole directory
  yield endRecords(entries.length, offset, cdSize, anyBig);
}
