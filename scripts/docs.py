"""Generators for the reference docs (run through cog: `cog -r docs/*.md`).

Why generated: configuration, errors and audit kinds change with the code; a test runs
`cog --check` so a stale page fails the suite (Datasette's documentation unit tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from pacsbridge import audit, errors
from pacsbridge.messages import text
from pacsbridge.settings import Settings


def configuration() -> str:
    lines = ["| setting | environment variable | default | description |", "|---|---|---|---|"]
    for path, field in _fields(Settings):
        env = "PACSBRIDGE_" + "__".join(p.upper() for p in path)
        default = _default(field)
        lines.append(f"| `{'.'.join(path)}` | `{env}` | {default} | {field.description or ''} |")
    return "\n".join(lines)


def _fields(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _fields(annotation, (*prefix, name))
        else:
            found.append(((*prefix, name), field))
    return found


def _default(field: Any) -> str:
    if field.is_required():
        return "(required)"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None:
        return "(none)"
    if isinstance(value, list):
        value = [str(v) for v in value]  # addresses, networks: as written in TOML
    return f"`{value}`" if value != [] else "`[]`"


def error_codes() -> str:
    lines = [
        "| code | HTTP | retriable | message key | Italian message | English message |",
        "|---|---|---|---|---|---|",
    ]
    for cls in errors.all_error_classes():
        lines.append(
            f"| `{cls.code}` | {cls.http_status} | {'yes' if cls.retriable else 'no'} "
            f"| `{cls.message_key}` | {text(cls.message_key, 'it')} "
            f"| {text(cls.message_key, 'en')} |"
        )
    return "\n".join(lines)


def audit_kinds() -> str:
    lines = ["| kind | meaning |", "|---|---|"]
    lines += [f"| `{kind}` | {meaning} |" for kind, meaning in audit.KINDS.items()]
    return "\n".join(lines)


def import_lifecycle() -> str:
    """The import states, what each means, and where each may go (imports.lifecycle)."""
    from pacsbridge.imports import lifecycle

    return _state_table(
        "state",
        lifecycle.ImportState,
        lifecycle.TRANSITIONS,
        lifecycle.MEANING,
        {"confirmable": lifecycle.confirmable, "cancellable": lifecycle.cancellable},
    )


def study_lifecycle() -> str:
    """Study states and the PACS statuses a study may be sent with."""
    from pacsbridge.imports import lifecycle

    lines = ["| study state | may move to |", "|---|---|"]
    for state in lifecycle.StudyState:
        targets = ", ".join(f"`{t}`" for t in lifecycle.STUDY_TRANSITIONS[state])
        lines.append(f"| `{state}` | {targets or '(final)'} |")
    lines += ["", "| PACS status | sendable |", "|---|---|"]
    lines += [f"| `{s}` | {_yes(lifecycle.sendable(s))} |" for s in lifecycle.PacsStatus]
    return "\n".join(lines)


def phase_states() -> str:
    """The states of one pipeline phase (imports.lifecycle.PhaseState)."""
    from pacsbridge.imports import lifecycle

    lines = ["| phase state | meaning |", "|---|---|"]
    lines += [f"| `{s}` | {lifecycle.PHASE_MEANING[s]} |" for s in lifecycle.PhaseState]
    return "\n".join(lines)


def _state_table(
    heading: str,
    states: Any,
    transitions: Mapping[Any, Any],
    meaning: Mapping[Any, str],
    predicates: Mapping[str, Callable[[Any], bool]],
) -> str:
    """One lifecycle as a table: state, meaning, where it may go, then a yes/no per predicate."""
    columns = [heading, "meaning", "may move to", *predicates]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for state in states:
        targets = ", ".join(f"`{t}`" for t in states if t in transitions[state])
        answers = " | ".join(_yes(ask(state)) for ask in predicates.values())
        lines.append(f"| `{state}` | {meaning[state]} | {targets or '(final)'} | {answers} |")
    return "\n".join(lines)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def retrieval_lifecycle() -> str:
    """The retrieval states, what each means, and where each may go (retrievals.lifecycle)."""
    from pacsbridge.retrievals import lifecycle

    return _state_table(
        "state",
        lifecycle.RetrievalState,
        lifecycle.TRANSITIONS,
        lifecycle.MEANING,
        {"final": lifecycle.final, "package served": lifecycle.servable},
    )


def cached_study_lifecycle() -> str:
    """The states of a study in the retrieval cache (retrievals.lifecycle)."""
    from pacsbridge.retrievals import lifecycle

    return _state_table(
        "study state",
        lifecycle.StudyState,
        lifecycle.STUDY_TRANSITIONS,
        lifecycle.STUDY_MEANING,
        {"to move": lifecycle.to_move, "settled": lifecycle.settled},
    )
