// A STORE zip written as pieces: zip headers (typed arrays) and the files themselves (Blobs).
//
// The layout is client-zip 2.5.1's (PKWARE APPNOTE 6.3.x) with two differences: every entry
// has a local header with the UTF-8 name flag (bit 11) and the data descriptor flag (bit 3),
// its bytes stored as they are, then a data descriptor with the sizes (8-byte sizes when the
// entry is 4 GiB or more: APPNOTE 4.3.9.2); the central directory gives a ZIP64 extra field
// (APPNOTE 4.5.3) to an entry whose size or local header offset does not fit in 32 bits; a
// ZIP64 end of central directory record and locator (APPNOTE 4.3.14-15) follow when any entry
// or offset needed ZIP64, and also when there are more than 65,535 entries (APPNOTE 4.4.21-22;
// client-zip writes none then).
//
// The CRC-32 is left 0 in the descriptor and the central directory, and each local header and
// central directory record carries a private extra field saying so: header ID 0x5042, 1 byte
// of data, version 1 ("CRC-32 to be filled by the receiver", docs/operator-pages.md). The
// server computes each CRC while it extracts the entry and writes it into the stored archive
// (media/crcfill.py). So the page reads no byte of the files: a part is slices of the files and
// the headers, and Chromium's browser process reads each byte once, to send it. Computing the
// CRC here cost every byte a second trip through the browser process into the page (the
// largest cost of the upload: bench/README.md).

const BIG = 0xffffffff; // from here on a size or offset needs ZIP64 (as client-zip decides)
const MAX_ENTRIES = 0xffff;
const TWO_32 = 2 ** 32;
/** The private extra field: "CRC-32 to be filled by the receiver" (docs/operator-pages.md). */
export const CRC_FIELD = Uint8Array.of(0x42, 0x50, 1, 0, 1); // ID 0x5042, size 1, version 1
const FIELD = CRC_FIELD.length;

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

/** Central directory ZIP64 extra field length of an entry: none, offset only, or sizes too. */
const zip64Length = (size, offset) => (size >= BIG ? 28 : offset >= BIG ? 12 : 0);

/** The end records are ZIP64 when any size or offset is, or there are too many entries. */
const needsZip64 = (anyBig, count, cdOffset, cdSize) =>
  anyBig || cdOffset >= BIG || cdSize >= BIG || count > MAX_ENTRIES;

/** Bytes of an entry before the central directory: local header, data, descriptor. */
const entryLength = ({ name, size }) => 30 + FIELD + name.length + size + (size >= BIG ? 24 : 16);

/** Exact byte length of the zip of `entries` (as `layout` gives them), before any byte is read. */
export function zipLength(entries) {
  let offset = 0;
  let cdSize = 0;
  let anyBig = false;
  for (const entry of entries) {
    cdSize += 46 + entry.name.length + zip64Length(entry.size, offset) + FIELD;
    offset += entryLength(entry);
    anyBig ||= entry.size >= BIG;
  }
  return offset + cdSize + 22 + (needsZip64(anyBig, entries.length, offset, cdSize) ? 76 : 0);
}

export function localHeader(entry, [time, day]) {
  const bytes = new Uint8Array(30 + entry.name.length + FIELD);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, 0x504b0304);
  v.setUint32(4, 0x2d000808); // version 4.5; flags: descriptor (bit 3), UTF-8 name (bit 11)
  v.setUint16(10, time, true);
  v.setUint16(12, day, true);
  v.setUint16(26, entry.name.length, true);
  v.setUint16(28, FIELD, true);
  bytes.set(entry.name, 30);
  bytes.set(CRC_FIELD, 30 + entry.name.length);
  return bytes;
}

/** The data descriptor: signature, CRC-32 0 (filled by the receiver), sizes. */
export function descriptor(size) {
  const big = size >= BIG;
  const v = new DataView(new ArrayBuffer(big ? 24 : 16));
  v.setUint32(0, 0x504b0708);
  if (big) {
    set64(v, 8, size);
    set64(v, 16, size);
  } else {
    v.setUint32(8, size, true);
    v.setUint32(12, size, true);
  }
  return new Uint8Array(v.buffer);
}

/** The central directory record: CRC-32 0, the ZIP64 extra field if needed, then ours. */
export function centralHeader(entry, offset, [time, day]) {
  const { name, size } = entry;
  const zip64 = zip64Length(size, offset);
  const bytes = new Uint8Array(46 + name.length + zip64 + FIELD);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, 0x504b0102);
  v.setUint32(4, 0x2d032d00); // made by 4.5 on Unix, needs 4.5
  v.setUint16(8, 0x0808, true);
  v.setUint16(12, time, true);
  v.setUint16(14, day, true);
  v.setUint32(20, Math.min(BIG, size), true);
  v.setUint32(24, Math.min(BIG, size), true);
  v.setUint16(28, name.length, true);
  v.setUint16(30, zip64 + FIELD, true);
  v.setUint16(40, 0o100664, true); // external attributes: a regular file, rw-rw-r--
  v.setUint32(42, Math.min(BIG, offset), true);
  bytes.set(name, 46);
  const at = 46 + name.length;
  if (zip64) {
    v.setUint16(at, 1, true); // ZIP64 extended information
    v.setUint16(at + 2, zip64 - 4, true);
    if (zip64 === 28) {
      set64(v, at + 4, size);
      set64(v, at + 12, size);
    }
    set64(v, at + zip64 - 8, offset);
  }
  bytes.set(CRC_FIELD, at + zip64);
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
 * whole; the caller slices it), the central directory as one Blob. No byte of the data is read.
 */
export function* zipPieces({ entries, date }) {
  const central = [];
  let offset = 0;
  let anyBig = false;
  for (const entry of entries) {
    yield localHeader(entry, date);
    if (entry.size) yield entry.blob;
    yield descriptor(entry.size);
    central.push(centralHeader(entry, offset, date));
    offset += entryLength(entry);
    anyBig ||= entry.size >= BIG;
  }
  let cdSize = 0;
  for (const header of central) cdSize += header.length;
  yield new Blob(central); // one piece for the whole directory
  yield endRecords(entries.length, offset, cdSize, anyBig);
}
