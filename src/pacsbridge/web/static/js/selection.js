// What to send from the chosen folder or the dropped items.
//
// With a DICOMDIR (the shallowest one found: normally at the root) only the DICOMDIR and the
// files it references are sent, matched case-insensitively (ISO 9660 media show lower-case
// names on Linux, and may carry ";1" version suffixes). Without one (or when it cannot be
// read) every file is looked at: a "DICM" marker at byte 128 (only the first 132 bytes are
// read) means DICOM; a file without it is sent too, because raw data sets exist and the server
// decides, unless it is obviously something else by extension or by its first bytes
// (programs, web pages, documents, pictures, archives: what CDs carry besides images).
import { parseDicomdir } from "./dicomdir.js";

const NOT_DICOM_EXTENSIONS = new Set([
  "exe", "dll", "sys", "ocx", "msi", "cab", "bat", "cmd", "com", "inf", "ini", "cfg", "lnk",
  "url", "htm", "html", "xhtml", "js", "css", "json", "xml", "xsl", "txt", "log", "rtf",
  "pdf", "doc", "docx", "chm", "hlp", "png", "jpg", "jpeg", "gif", "bmp", "ico", "svg",
  "tif", "tiff", "zip", "rar", "7z", "jar", "class", "ttf", "otf", "woff", "woff2", "mp4",
  "avi", "wmv", "mov", "mp3", "wav", "dylib", "so", "app", "plist", "sh", "ps1", "vbs",
]);

const NOT_DICOM_MAGIC = [
  [0x4d, 0x5a], // MZ: Windows program
  [0x25, 0x50, 0x44, 0x46], // %PDF
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x47, 0x49, 0x46, 0x38], // GIF8
  [0x50, 0x4b, 0x03, 0x04], // PK: zip, jar, docx
  [0x7f, 0x45, 0x4c, 0x46], // ELF
  [0x3c], // "<": HTML, XML
  [0x5b], // "[": INI, INF
];

const PARALLEL_READS = 16;

function normalise(path) {
  return path
    .split("/")
    .map((part) => part.toLowerCase().replace(/;\d+$/, "").replace(/\.$/, ""))
    .join("/");
}

function extension(path) {
  const name = path.split("/").pop();
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

function startsWith(bytes, magic) {
  return magic.every((value, index) => bytes[index] === value);
}

/** "dicom" (marker), "other" (obviously not DICOM) or "unknown" (sent: the server decides). */
export function classify(path, head) {
  if (head.length >= 132 && head[128] === 0x44 && head[129] === 0x49 && head[130] === 0x43 &&
      head[131] === 0x4d) {
    return "dicom";
  }
  if (NOT_DICOM_EXTENSIONS.has(extension(path))) return "other";
  if (head.length === 0 || NOT_DICOM_MAGIC.some((magic) => startsWith(head, magic))) return "other";
  return "unknown";
}

async function head(file) {
  return new Uint8Array(await file.slice(0, 132).arrayBuffer());
}

async function mapLimited(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  });
  await Promise.all(runners);
  return results;
}

function findDicomdir(entries) {
  const found = entries.filter((e) => e.path.split("/").pop().toLowerCase() === "dicomdir");
  found.sort((a, b) => a.path.split("/").length - b.path.split("/").length);
  return found[0];
}

function relativeTo(base, path) {
  return base ? path.slice(base.length) : path;
}

async function fromDicomdir(entries, dicomdir) {
  const parsed = parseDicomdir(new Uint8Array(await dicomdir.file.arrayBuffer()));
  if (!parsed.files.length) return null;
  const base = dicomdir.path.slice(0, dicomdir.path.length - "dicomdir".length);
  const byPath = new Map();
  for (const entry of entries) {
    if (entry.path.startsWith(base)) byPath.set(normalise(relativeTo(base, entry.path)), entry);
  }
  const files = [{ name: relativeTo(base, dicomdir.path), file: dicomdir.file }];
  const seen = new Set();
  let missing = 0;
  for (const reference of parsed.files) {
    const key = normalise(reference);
    const entry = byPath.get(key);
    if (!entry) missing += 1;
    else if (!seen.has(key)) {
      seen.add(key);
      files.push({ name: relativeTo(base, entry.path), file: entry.file });
    }
  }
  return { mode: "dicomdir", files, patients: parsed.patients, missing, skipped: 0, unknown: 0 };
}

async function byScan(entries, mode) {
  const kinds = await mapLimited(entries, PARALLEL_READS, async (e) => classify(e.path, await head(e.file)));
  const files = [];
  let skipped = 0;
  let unknown = 0;
  entries.forEach((entry, index) => {
    if (kinds[index] === "other") skipped += 1;
    else {
      if (kinds[index] === "unknown") unknown += 1;
      files.push({ name: entry.path, file: entry.file });
    }
  });
  return { mode, files, patients: [], missing: 0, skipped, unknown };
}

/** entries [{path, file}] → {mode, files [{name, file}] in a fixed order, counts, patients}. */
export async function selectFiles(entries) {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const dicomdir = findDicomdir(sorted);
  let mode = "scan";
  if (dicomdir) {
    try {
      const selection = await fromDicomdir(sorted, dicomdir);
      if (selection) return withSize(selection);
    } catch (error) {
      console.warn("DICOMDIR unreadable", error);
    }
    mode = "broken-dicomdir";
  }
  return withSize(await byScan(sorted, mode));
}

function withSize(selection) {
  selection.totalBytes = selection.files.reduce((sum, f) => sum + f.file.size, 0);
  return selection;
}

/** The folder input's files; paths relative to the chosen folder (its own name dropped). */
export function entriesFromInput(fileList) {
  return [...fileList].map((file) => {
    const relative = file.webkitRelativePath || file.name;
    const parts = relative.split("/");
    return { path: parts.length > 1 ? parts.slice(1).join("/") : relative, file };
  });
}

function readAll(reader) {
  return new Promise((resolve, reject) => {
    const all = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (!batch.length) resolve(all);
        else {
          all.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

async function walk(entry, prefix, out) {
  if (entry.isFile) {
    out.push({ path: prefix + entry.name, file: await fileOf(entry) });
  } else if (entry.isDirectory) {
    for (const child of await readAll(entry.createReader())) {
      await walk(child, `${prefix}${entry.name}/`, out);
    }
  }
}

/**
 * Dropped items → entries. One dropped folder is the root (like the folder picker); several
 * items keep their names. Must be called synchronously from the drop handler: the browser
 * empties the DataTransfer once the handler returns.
 */
export function entriesFromDrop(dataTransfer) {
  const files = [...dataTransfer.files];
  const roots = [...dataTransfer.items]
    .filter((item) => item.kind === "file")
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  return (async () => {
    if (!roots.length) return files.map((file) => ({ path: file.name, file }));
    const out = [];
    if (roots.length === 1 && roots[0].isDirectory) {
      for (const child of await readAll(roots[0].createReader())) await walk(child, "", out);
    } else {
      for (const root of roots) await walk(root, "", out);
    }
    return out;
  })();
}
