// Copy the pinned front-end libraries from node_modules into this folder and write MANIFEST.json.
//
// Run from the repository root: `npm ci && npm run vendor`, then commit the result. The pages
// load only these committed copies: hospital networks are closed, so no CDN and no npm at run
// time. Each library lands in `<name>-<version>/` with its licence; the manifest records the
// version, licence, source and sha256 of every file (tests/web checks the hashes).
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..", "..", "..", "..");

const LIBRARIES = {
  bootstrap: ["dist/css/bootstrap.min.css", "dist/js/bootstrap.bundle.min.js", "LICENSE"],
  "client-zip": ["index.js", "LICENSE.txt"],
  "dicom-parser": ["dist/dicomParser.min.js", "LICENSE"],
};

function sha256(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

const manifest = {};
for (const entry of readdirSync(HERE, { withFileTypes: true })) {
  if (entry.isDirectory()) rmSync(join(HERE, entry.name), { recursive: true });
}
for (const [name, files] of Object.entries(LIBRARIES)) {
  const source = join(ROOT, "node_modules", name);
  const meta = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));
  const target = join(HERE, `${name}-${meta.version}`);
  mkdirSync(target, { recursive: true });
  const hashes = {};
  for (const file of files) {
    const base = file.split("/").pop();
    copyFileSync(join(source, file), join(target, base));
    hashes[base] = sha256(join(target, base));
  }
  manifest[name] = {
    version: meta.version,
    license: meta.license,
    source: `npm:${name}@${meta.version}`,
    folder: `${name}-${meta.version}`,
    files: hashes,
  };
}
writeFileSync(join(HERE, "MANIFEST.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`vendored: ${Object.keys(manifest).join(", ")}`);
