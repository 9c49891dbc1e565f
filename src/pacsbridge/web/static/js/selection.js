// What to send from the chosen folder or the dropped items.
//
// With a DICOMDIR (normally at the root; with several media the operator picks one) only the
// DICOMDIR and the files it references are sent, matched case-insensitively (ISO 9660 media show lower-case
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

// Documents of the medium (reports, scanned pages) travel with the images: the confirmation
// screen offers them and the operator ticks which ones to import (imports/documents.py). Not
// those of a viewer application: a folder below the root holding programs or libraries.
const DOCUMENT_EXTENSIONS = new Set(["pdf", "jpg", "jpeg", "png"]);
const APPLICATION_EXTENSIONS = new Set(["exe", "dll", "so", "dylib", "jar", "ocx", "msi", "class"]);

function folderPath(path) {
  const parts = path.split("/");
  return parts.slice(0, -1).join("/");
}

/** The entries under `base` that are documents, outside any viewer application's folder. */
function documentsOf(entries, base = "") {
  const inside = entries.filter((e) => e.path.startsWith(base));
  const applications = new Set(inside
    .filter((e) => APPLICATION_EXTENSIONS.has(extension(e.path)))
    .map((e) => folderPath(relativeTo(base, e.path)))
    .filter(Boolean));
  return inside.filter((e) => {
    if (!DOCUMENT_EXTENSIONS.has(extension(e.path))) return false;
    const parts = folderPath(relativeTo(base, e.path)).split("/").filter(Boolean);
    return !parts.some((_, i) => applications.has(parts.slice(0, i + 1).join("/")));
  });
}

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

/** Every DICOMDIR, shallowest first: one per medium (a parent folder may hold two CDs). */
function findDicomdirs(entries) {
  const found = entries.filter((e) => e.path.split("/").pop().toLowerCase() === "dicomdir");
  found.sort((a, b) => a.path.split("/").length - b.path.split("/").length ||
    (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return found;
}

function folderOf(dicomdir) {
  return dicomdir.path.slice(0, dicomdir.path.length - "dicomdir".length);
}

/** The media found: each DICOMDIR not inside another one's folder, named by its folder. */
function mediaOf(dicomdirs) {
  const media = [];
  for (const dicomdir of dicomdirs) {
    const base = folderOf(dicomdir);
    if (media.some((m) => base.startsWith(m.base))) continue;
    media.push({ base, label: base.replace(/\/$/, "") || "/", dicomdir });
  }
  return media;
}

function relativeTo(base, path) {
  return base ? path.slice(base.length) : path;
}

async function fromDicomdir(entries, dicomdir) {
  const parsed = parseDicomdir(new Uint8Array(await dicomdir.file.arrayBuffer()));
  if (!parsed.files.length) return null;
  const base = folderOf(dicomdir);
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
  if (files.length === 1) return { unresolved: true }; // files without their folders
  const documents = documentsOf(entries, base);
  for (const entry of documents) files.push({ name: relativeTo(base, entry.path), file: entry.file });
  return {
    mode: "dicomdir", files, patients: parsed.patients, missing, skipped: 0, unknown: 0,
    documents: documents.length,
  };
}

/** Files dropped from several folders may share a name; a zip must not hold it twice. */
function unique(name, names) {
  let candidate = name;
  for (let n = 2; names.has(candidate); n += 1) candidate = `${name}~${n}`;
  names.add(candidate);
  return candidate;
}

async function byScan(entries, mode) {
  const kinds = await mapLimited(entries, PARALLEL_READS, async (e) => classify(e.path, await head(e.file)));
  const documents = new Set(documentsOf(entries));
  const files = [];
  let skipped = 0;
  let unknown = 0;
  const names = new Set();
  entries.forEach((entry, index) => {
    if (documents.has(entry)) files.push({ name: unique(entry.path, names), file: entry.file });
    else if (kinds[index] === "other") skipped += 1;
    else {
      if (kinds[index] === "unknown") unknown += 1;
      files.push({ name: unique(entry.path, names), file: entry.file });
    }
  });
  return { mode, files, patients: [], missing: 0, skipped, unknown, documents: documents.size };
}

/**
 * entries [{path, file}] → {mode, files [{name, file}] in a fixed order, counts, patients}.
 *
 * A folder holding several media (one DICOMDIR each, e.g. the parent of two CDs) answers
 * mode "choose-media" with their names until `medium` (one of them) says which one to send:
 * one import is one medium, and nothing is left out silently. A DICOMDIR none of whose paths
 * resolves (its files were dropped without their folders) gives way to the files themselves,
 * without the DICOMDIR (the server would follow its paths again), mode "unresolved-dicomdir".
 */
export async function selectFiles(entries, { medium } = {}) {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const media = mediaOf(findDicomdirs(sorted));
  if (media.length > 1 && !media.some((m) => m.label === medium)) {
    return withSize({ mode: "choose-media", media: media.map((m) => m.label), files: [], patients: [],
      missing: 0, skipped: 0, unknown: 0, documents: 0 });
  }
  const chosen = media.length > 1 ? media.find((m) => m.label === medium) : media[0];
  const others = media.filter((m) => m !== chosen).map((m) => m.label);
  const inMedium = chosen && media.length > 1
    ? sorted.filter((e) => e.path.startsWith(chosen.base)) : sorted;
  let mode = "scan";
  if (chosen) {
    try {
      const selection = await fromDicomdir(inMedium, chosen.dicomdir);
      if (selection && !selection.unresolved) return withSize({ ...selection, others });
      mode = selection ? "unresolved-dicomdir" : "broken-dicomdir";
    } catch (error) {
      console.warn("DICOMDIR unreadable", error);
      mode = "broken-dicomdir";
    }
  }
  const scanned = mode === "unresolved-dicomdir"
    ? inMedium.filter((e) => e.path.split("/").pop().toLowerCase() !== "dicomdir") : inMedium;
  return withSize({ ...(await byScan(scanned, mode)), others });
}

function withSize(selection) {
  selection.totalBytes = selection.files.reduce((sum, f) => sum + f.file.size, 0);
  return selection;
}

/** What was chosen, as the operator named it: the folder's name, else the first item's. */
function labelled(entries, items) {
  if (items.length) entries.label = items.length === 1 ? items[0].name : `${items[0].name} (+${items.length - 1})`;
  return entries;
}

/** The folder input's files; paths relative to the chosen folder (its own name dropped). */
export function entriesFromInput(fileList) {
  const files = [...fileList];
  const folder = files.length && files[0].webkitRelativePath ? files[0].webkitRelativePath.split("/")[0] : "";
  const entries = files.map((file) => {
    const relative = file.webkitRelativePath || file.name;
    const parts = relative.split("/");
    return { path: parts.length > 1 ? parts.slice(1).join("/") : relative, file };
  });
  return folder ? Object.assign(entries, { label: folder }) : labelled(entries, files);
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
    if (!roots.length) return labelled(files.map((file) => ({ path: file.name, file })), files);
    const out = [];
    if (roots.length === 1 && roots[0].isDirectory) {
      out.label = roots[0].name;
      for (const child of await readAll(roots[0].createReader())) await walk(child, "", out);
    } else {
      for (const root of roots) await walk(root, "", out);
      labelled(out, roots);
    }
    return out;
  })();
}
