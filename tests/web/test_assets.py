"""Front-end assets and catalogues: vendored files as the manifest says, CSP-clean templates,
gettext catalogues complete and compiled."""

from __future__ import annotations

import gettext
import hashlib
import json
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

import pacsbridge.web

WEB = Path(pacsbridge.web.__file__).parent
VENDOR = WEB / "static" / "vendor"
LOCALE = WEB / "locale"
OWN_FILES = [
    *(WEB / "templates").rglob("*.html"),
    *(WEB / "static" / "js").glob("*.js"),
    *(WEB / "static" / "css").glob("*.css"),
]


def test_vendored_files_match_the_manifest() -> None:
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    package = json.loads((WEB.parents[2] / "package.json").read_text())
    assert set(manifest) == set(package["dependencies"])
    for name, entry in manifest.items():
        assert entry["version"] == package["dependencies"][name]
        folder = VENDOR / entry["folder"]
        assert any(f.startswith("LICENSE") for f in entry["files"]), name
        for file, digest in entry["files"].items():
            assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, file


def test_pages_load_nothing_from_elsewhere_and_run_no_inline_script() -> None:
    for path in OWN_FILES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert not re.search(r"\son[a-z]+=", text), path  # no inline event handlers
        assert " style=" not in text, path  # no inline styles either (CSP)
        for tag in re.findall(r"<script[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
    for path in (WEB / "static" / "js").glob("*.js"):
        assert ".innerHTML" not in path.read_text(), path  # DICOM values go in as text


def _catalogue(lang: str) -> dict[tuple[str | None, str], str]:
    """(msgctxt, msgid) → msgstr: the message catalogue's entries have their key as context."""
    with open(LOCALE / lang / "LC_MESSAGES" / "pacsbridge.po", "rb") as handle:
        return {(m.context, m.id): m.string for m in read_po(handle) if m.id}


def _extracted() -> set[tuple[str | None, str]]:
    """What the extraction of docs/operator-pages.md finds (run from src/pacsbridge)."""
    method_map = [
        ("messages/**.py", "python"),
        ("web/pages/**.py", "python"),
        ("web/templates/**.html", "jinja2"),
    ]
    options = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "M_": ((1, "c"), 2)}
    found = extract_from_dir(str(WEB.parent), method_map, options, keywords=keywords)
    return {(m[4], m[2] if isinstance(m[2], str) else m[2][0]) for m in found}


@pytest.mark.parametrize("lang", ["it", "en"])
def test_catalogue_is_complete_and_compiled(lang: str) -> None:
    catalogue = _catalogue(lang)
    assert set(catalogue) == _extracted(), "run the extraction of docs/operator-pages.md"
    if lang == "it":  # English msgids: an empty English msgstr falls back to the msgid
        assert all(catalogue.values()), [k for k, v in catalogue.items() if not v]
    with open(LOCALE / lang / "LC_MESSAGES" / "pacsbridge.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for (context, msgid), msgstr in catalogue.items():
        found = compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)
        assert found == (msgstr or msgid), "recompile: pybabel compile"


def test_italian_labels_are_those_of_the_specification() -> None:
    italian = set(_catalogue("it").values())
    for label in [
        "CARICO STUDIO DA CD o DIRECTORY",
        "Seleziona Cartella",
        "Comprimi e Invia Studio",
        "Compressione ZIP...",
        "TRASFERIMENTO DELLO STUDIO...",
        "Importazioni Precedenti (con Log)",
        "CONFERMA IMPORT STUDI",
        "CONFERMA IMPORTAZIONE",
        "ANNULLA IMPORTAZIONE",
        "Paziente Trovato (DICOM)",
        "Studi Associati",
        "Richiesta creata",
        "In attesa processo",
        "In corso",
        "Completato / OK",
        "Errore",
        "Apri",
    ]:
        assert label in italian, label


def test_bundled_viewer_matches_its_manifest_without_the_parts_left_out() -> None:
    """OHIF as scripts/install-viewer pinned it: every file's hash, its licence, no ONNX
    runtime or microscopy viewer, chunks loaded from /static/ohif/, and a size we can ship."""
    folder = WEB / "static" / "ohif"
    manifest_path = folder / "MANIFEST.json"
    assert manifest_path.is_file(), "OHIF is not installed: run scripts/install-viewer"
    manifest = json.loads(manifest_path.read_text())
    assert (manifest["name"], manifest["version"], manifest["license"]) == (
        "@ohif/app",
        "3.13.2",
        "MIT",
    )
    assert "LICENSE" in manifest["files"]
    assert not [f for f in manifest["files"] if f.startswith(("ort/", "dicom-microscopy"))]
    assert not [f for f in manifest["files"] if f.endswith(".map")]
    size = 0
    for file, digest in manifest["files"].items():
        data = (folder / file).read_bytes()
        size += len(data)
        assert hashlib.sha256(data).hexdigest() == digest, file
    assert size < 60 * 1024**2
    [app] = folder.glob("app.bundle.*.js")
    assert '__webpack_require__.p = "/static/ohif/";' in app.read_text(encoding="utf-8")
