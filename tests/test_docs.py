"""Documentation kept true by tests: generated pages in sync, every setting described, every
message key used in code present in both languages (Datasette's documentation unit tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from pacsbridge import audit
from pacsbridge.messages import CATALOGUE, LANGUAGES
from pacsbridge.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pacsbridge"


def test_generated_docs_are_current():
    # this checkout's code, whichever pacsbridge is installed
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


def test_every_message_has_both_languages():
    incomplete = [key for key, entry in CATALOGUE.items() if set(LANGUAGES) - set(entry)]
    assert incomplete == []


KEY_PATTERN = re.compile(
    r"""["']((?:identity|study|media|pacs|error|phase|state|done|final|verify|send|page|"""
    r"""retrieval|package|cache)\.(?!html["'])[a-z_]+)["']"""
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
