// DICOMDIR reading with dicom-parser (vendored, loaded as the global `dicomParser`).
//
// Directory records are items of (0004,1220); (0004,1430) is the record type, (0004,1500) the
// Referenced File ID (components separated by "\"). The hierarchy follows the record offsets
// ((0004,1200) first root record, (0004,1400) next, (0004,1420) lower level), which count from
// the first byte of the file; a DICOMDIR whose offsets do not resolve is read in item order.

const NAME = "x00100010";

function text(ds, tag) {
  try {
    return ds.string(tag) || "";
  } catch {
    return "";
  }
}

function personName(value) {
  return value.split("=")[0].split("^").map((p) => p.trim()).filter(Boolean).join(" ");
}

function isoDate(value) {
  return /^\d{8}$/.test(value) ? `${value.slice(6, 8)}/${value.slice(4, 6)}/${value.slice(0, 4)}` : value;
}

function newPatient(ds) {
  return {
    name: personName(text(ds, NAME)),
    id: text(ds, "x00100020"),
    birthDate: isoDate(text(ds, "x00100030")),
    studies: [],
  };
}

function newStudy(ds) {
  return {
    uid: text(ds, "x0020000d"),
    date: isoDate(text(ds, "x00080020")),
    description: text(ds, "x00081030"),
    accession: text(ds, "x00080050"),
    modalities: new Set(),
    images: 0,
  };
}

function visit(ds, parent, result) {
  const context = { ...parent };
  const type = text(ds, "x00041430").toUpperCase();
  if (type === "PATIENT") {
    context.patient = newPatient(ds);
    context.study = null;
    result.patients.push(context.patient);
  } else if (type === "STUDY") {
    if (!context.patient) {
      context.patient = newPatient(ds);
      result.patients.push(context.patient);
    }
    context.study = newStudy(ds);
    context.patient.studies.push(context.study);
  } else if (type === "SERIES" && context.study) {
    const modality = text(ds, "x00080060");
    if (modality) context.study.modalities.add(modality);
  }
  const fileId = text(ds, "x00041500");
  if (fileId) {
    result.files.push(fileId.split("\\").map((p) => p.trim()).filter(Boolean).join("/"));
    if (context.study) context.study.images += 1;
  }
  return context;
}

function walkOffsets(dataSet, items, result) {
  const byOffset = new Map(items.map((item) => [item.dataOffset - 8, item]));
  const first = dataSet.uint32("x00041200");
  if (!byOffset.has(first)) return false;
  const seen = new Set();
  const walk = (offset, parent) => {
    while (offset && byOffset.has(offset) && !seen.has(offset)) {
      seen.add(offset);
      const record = byOffset.get(offset).dataSet;
      const context = visit(record, parent, result);
      const lower = record.uint32("x00041420");
      if (lower) walk(lower, context);
      offset = record.uint32("x00041400");
    }
  };
  walk(first, {});
  return true;
}

function walkInOrder(items, result) {
  let current = {};
  for (const item of items) {
    const type = text(item.dataSet, "x00041430").toUpperCase();
    let parent = current;
    if (type === "PATIENT") parent = {};
    if (type === "STUDY") parent = { patient: current.patient };
    const context = visit(item.dataSet, parent, result);
    if (type === "PATIENT" || type === "STUDY" || type === "SERIES") current = context;
  }
}

/** Patients, studies and the referenced files ("DIR/SUB/FILE") of a DICOMDIR's bytes. */
export function parseDicomdir(bytes) {
  const dataSet = globalThis.dicomParser.parseDicom(bytes);
  const items = (dataSet.elements.x00041220 && dataSet.elements.x00041220.items) || [];
  const result = { patients: [], files: [] };
  if (!walkOffsets(dataSet, items, result)) {
    result.patients = [];
    result.files = [];
    walkInOrder(items, result);
  }
  for (const patient of result.patients) {
    for (const study of patient.studies) study.modalities = [...study.modalities].sort();
  }
  return result;
}
