"""Documentation kept true by tests: generated pages in sync, every setting described, every
message key used in code present in both languages (Datasette's documentation unit tests)."""

from __future__ import annotations

import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from pacsbridge import audit
from pacsbridge.messages import CATALOGUE, template
from pacsbridge.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pacsbridge"


def test_generated_docs_are_current():
    # this checkout's code, not whichever pacsbridge is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "scripts"), str(ROOT / "src")])}
    pages = ["configuration.md", "errors.md", "audit.md", "lifecycle.md"]
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", *pages],
        cwd=ROOT / "docs",
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, "run: cd docs && PYTHONPATH=../scripts cog -r *.md\n" + (
        result.stdout + result.stderr
    )


def _models(model: type[BaseModel]):
    yield model
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _models(field.annotation)


@pytest.mark.parametrize("model", list(_models(Settings)), ids=lambda m: m.__name__)
def test_every_setting_is_described(model):
    missing = [name for name, field in model.model_fields.items() if not field.description]
    assert missing == []


def _placeholders(words: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(words) if name}


def test_every_message_has_an_italian_translation_with_the_same_placeholders():
    """Each key has its Italian msgstr (web/locale/it, msgctxt = the key), and every
    ``{placeholder}`` of the English survives translation (and none is invented)."""
    from babel.messages.pofile import read_po

    from pacsbridge.messages import LOCALE_DIR

    with open(LOCALE_DIR / "it" / "LC_MESSAGES" / "pacsbridge.po", "rb") as handle:
        italian = {(m.context, m.id): m.string for m in read_po(handle) if m.context}
    untranslated = [k for k, english in CATALOGUE.items() if not italian.get((k, english))]
    assert untranslated == []
    changed = {
        key: (_placeholders(english), _placeholders(template(key, "it")))
        for key, english in CATALOGUE.items()
        if _placeholders(english) != _placeholders(template(key, "it"))
    }
    assert changed == {}
    assert template("identity.match", "it") == "PAZIENTE CORRISPONDE"


KEY_PATTERN = re.compile(
    r"""["']((?:identity|study|media|pacs|error|phase|state|done|final|verify|send|page|"""
    r"""retrieval|package|cache|archive|analysis)\.(?!(?:html|zip)["'])[a-z_]+)["']"""
)


def test_every_message_key_used_in_code_exists():
    used = {
        match
        for path in SRC.rglob("*.py")
        for match in KEY_PATTERN.findall(path.read_text(encoding="utf-8"))
    }
    kinds = set(audit.KINDS)
    unknown = sorted(k for k in used if k not in CATALOGUE and k not in kinds)
    assert unknown == []


def test_every_audit_kind_used_in_code_is_registered():
    pattern = re.compile(r"""audit\.record\([^)]*?["']([a-z_]+\.[a-z_]+)["']""", re.S)
    used = {m for p in SRC.rglob("*.py") for m in pattern.findall(p.read_text(encoding="utf-8"))}
    assert used - set(audit.KINDS) == set()
    assert used, "the pattern must find the audit calls"
