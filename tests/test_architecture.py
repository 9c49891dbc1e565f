"""The shape of the house: module size ceiling and the import-linter dependency contracts."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from pacsbridge.imports.lifecycle import PhaseState
from pacsbridge.retrievals.lifecycle import RetrievalState, StudyState

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def test_modules_stay_small():
    large = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "src").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert large == {}


def test_dependency_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    command = [str(lint)] if lint.exists() else ["lint-imports"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # this checkout, not the installed one
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


RETRIEVALS = ROOT / "src" / "pacsbridge" / "retrievals"
STATES = {str(s) for s in RetrievalState} | {str(s) for s in StudyState}


PHASE_STATES = {str(s) for s in PhaseState}


def _state_literals(tree: ast.AST, states: set[str] = STATES) -> list[int]:
    """Lines comparing with, or setting ``state`` to, a bare string of ``states``."""
    return [line for node in ast.walk(tree) for line in _bare_states(node, states)]


def _bare_states(node: ast.AST, states: set[str]) -> list[int]:
    if isinstance(node, ast.Compare):
        items = []
        for operand in (node.left, *node.comparators):
            many = isinstance(operand, ast.Tuple | ast.Set | ast.List)
            items += operand.elts if many else [operand]
        return [node.lineno for item in items if _is_state(item, states)]
    if isinstance(node, ast.keyword) and node.arg == "state" and _is_state(node.value, states):
        return [node.value.lineno]
    sets_state = isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Attribute) and t.attr == "state" for t in node.targets
    )
    return [node.lineno] if sets_state and _is_state(node.value, states) else []


def _is_state(node: ast.AST, states: set[str]) -> bool:
    return isinstance(node, ast.Constant) and node.value in states


def test_retrieval_states_are_named_only_by_their_lifecycle():
    bare = {
        path.name: lines
        for path in RETRIEVALS.glob("*.py")
        if path.name != "lifecycle.py"
        and (lines := _state_literals(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert bare == {}


def test_phase_states_are_named_only_by_the_import_lifecycle():
    """Modules that handle ``PhaseRun`` rows (or show them) say ``PhaseState.X``, never "x"."""
    package = ROOT / "src" / "pacsbridge"
    handling = [
        path
        for path in package.rglob("*.py")
        if path.name not in ("lifecycle.py", "models.py")
        and ("PhaseRun" in (source := path.read_text(encoding="utf-8")) or "PhaseState" in source)
    ]
    bare = {
        str(path.relative_to(package)): lines
        for path in handling
        if (lines := _state_literals(ast.parse(path.read_text(encoding="utf-8")), PHASE_STATES))
    }
    assert len(handling) >= 3 and bare == {}


def test_only_the_cache_deletes_retrieval_folders():
    deleting = sorted(
        path.name
        for path in RETRIEVALS.glob("*.py")
        if "rmtree" in path.read_text(encoding="utf-8")
    )
    assert deleting == ["cache.py"]


def test_only_the_workspace_deletes_import_folders():
    imports = ROOT / "src" / "pacsbridge" / "imports"
    deleting = sorted(
        str(path.relative_to(imports))
        for path in imports.rglob("*.py")
        if "rmtree" in path.read_text(encoding="utf-8")
    )
    assert deleting == ["workspace.py"]
