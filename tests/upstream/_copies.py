"""Patched copies of the installed pynetdicom, and child processes that import them.

Each test copies the installed package into a temporary folder, applies patches from
``patches/pynetdicom/`` with GNU ``patch`` (no fuzz: a patch must apply as written) and runs
a script in a subprocess whose ``PYTHONPATH`` starts at that copy (docs/upstream-patches.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pynetdicom

PATCHES = Path(__file__).resolve().parents[2] / "patches" / "pynetdicom"
SCRIPTS = Path(__file__).resolve().parent / "scripts"
INSTALLED = Path(pynetdicom.__file__).resolve().parent


def patch_tool() -> str:
    """GNU patch; a missing tool is a failure, never a skip."""
    tool = shutil.which("patch")
    assert tool, "GNU patch is needed to apply patches/pynetdicom (apt-get install patch)"
    return tool


def copy_with(tmp: Path, *names: str) -> Path:
    """A copy of the installed pynetdicom with the named patches applied in order."""
    root = tmp / ("patched-" + "-".join(n[:4] for n in names) if names else "pristine")
    shutil.copytree(INSTALLED, root / "pynetdicom", ignore=shutil.ignore_patterns("__pycache__"))
    for name in names:
        done = subprocess.run(
            [patch_tool(), "-p1", "--fuzz=0", "--no-backup-if-mismatch", "-d", str(root)],
            stdin=(PATCHES / name).open("rb"),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{name} does not apply: {done.stdout}{done.stderr}"
    return root


def run(root: Path, script: str, *args: str, timeout: float = 60) -> dict:
    """Run ``scripts/<script>`` against the copy at ``root``; its last line is JSON."""
    env = dict(os.environ, PYTHONPATH=str(root))
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["pynetdicom"]).is_relative_to(root), "the child imported another copy"
    return result
