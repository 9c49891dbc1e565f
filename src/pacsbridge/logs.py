"""Logging for serve, worker and demo: one stderr handler whose lines never carry patient data.

Only the audit log may hold patient data (names, ids, birth dates, UIDs, file names from
media); the process log is read by system administrators and shipped to log collectors. Our own
log calls are value-free by construction (an import id and a file index, an error class name).
What other libraries log is made value-free here, in one place (docs/logging.md):

* ``warnings.warn`` (pydicom warns about invalid values and quotes them, e.g. a DA birth date) is
  logged as the warning's category and the module that raised it, once per code location.
* pydicom's own log records are reduced to "pydicom <where>: text withheld".
* pynetdicom's DEBUG records (PDU and DIMSE dumps with UIDs and data sets) are dropped; its INFO
  lines (association requested, accepted, released: AE titles and addresses) are kept.
* Every traceback, whoever logs it, shows its frames and the exception class names only: the
  messages of pydicom, zipfile and OS errors quote paths from the media.
* Unhandled exceptions of threads and of the CLI are logged through the same route.
* SQLAlchemy stays at WARNING whatever the level: at INFO it logs statement parameters.

Records carry the ids of what they are about (``bound``): the HTTP request id, the import id,
the retrieval id, our own numbers and never a value from outside. The JSON format
(``logging.format = "json"``) writes them as fields, for log collectors.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WITHHELD = "text withheld"
#: Loggers that log values at INFO/DEBUG and stay at WARNING (docs/logging.md).
QUIET = ("sqlalchemy",)
_CHAINED = (
    (
        "__cause__",
        "The above exception was the direct cause of the following exception:",
    ),
    (
        "__context__",
        "During handling of the above exception, another exception occurred:",
    ),
)

#: The ids a record may carry (docs/logging.md, "Ids"): our own numbers, never outside values.
ID_FIELDS = ("request_id", "import_id", "retrieval_id")
Format = Literal["text", "json"]

log = logging.getLogger(__name__)
_warned: set[tuple[str, str, int]] = set()
_ids: ContextVar[dict[str, Any] | None] = ContextVar("pacsbridge_log_ids", default=None)


def configure(
    level: str | int = "INFO", stream: TextIO | None = None, format: Format = "text"
) -> None:
    """Route every log record of this process through the value-free filter to ``stream``."""
    level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    root = logging.getLogger()
    old = [h for h in root.handlers if isinstance(h, _Handler)]
    for handler in old:
        root.removeHandler(handler)
    if stream is None and old:
        stream = old[0].stream  # a second configure (the settings' format) keeps the stream
    root.addHandler(_handler(stream or sys.stderr, format))
    root.setLevel(level)
    _quiet_libraries(level)
    _guard_foreign_handlers()
    warnings.showwarning = show_warning
    threading.excepthook = _thread_excepthook


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours: the one a second ``configure`` replaces."""


def _handler(stream: TextIO, format: Format = "text") -> logging.Handler:
    handler = _Handler(stream)
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(FORMAT))
    handler.addFilter(ValueFree())
    handler.addFilter(_WithIds())
    return handler


def use_format(format: Format) -> None:
    """Switch our handler to ``format`` once the settings are read (``logging.format``)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _Handler):
            handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(FORMAT))


@contextmanager
def bound(**ids: Any) -> Iterator[dict[str, Any]]:
    """Records logged inside carry these ids (and the ids bound around this block)."""
    current = {**(_ids.get() or {}), **_known(ids)}
    token = _ids.set(current)
    try:
        yield current
    finally:
        _ids.reset(token)


def bind(**ids: Any) -> None:
    """Add ids to the innermost ``bound`` block, even from a copied context (a thread of a
    request's thread pool shares its ids' dictionary with the request)."""
    current = _ids.get()
    if current is not None:
        current.update(_known(ids))


def current_ids() -> dict[str, Any]:
    return dict(_ids.get() or {})


def _known(ids: dict[str, Any]) -> dict[str, Any]:
    unknown = set(ids) - set(ID_FIELDS)
    if unknown:
        raise ValueError(f"not a log id: {sorted(unknown)}")
    return {key: value for key, value in ids.items() if value is not None}


class _WithIds(logging.Filter):
    """Put the bound ids on the record (the JSON formatter writes them as fields)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_ids.get() or {}).items():
            setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, the traceback.

    The message and traceback are the value-free ones the filter left (docs/logging.md).
    """

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": at.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: getattr(record, k) for k in ID_FIELDS if hasattr(record, k)})
        if record.exc_text:
            line["traceback"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def _quiet_libraries(level: int) -> None:
    """pynetdicom at WARNING unless DEBUG was asked for (the filter drops its dumps anyway)."""
    from pynetdicom import _config

    _config.LOG_REQUEST_IDENTIFIERS = False  # C-FIND/C-MOVE identifiers logged at INFO
    _config.LOG_RESPONSE_IDENTIFIERS = False
    logging.getLogger("pynetdicom").setLevel(
        logging.DEBUG if level <= logging.DEBUG else logging.WARNING
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def _guard_foreign_handlers() -> None:
    """Handlers libraries attached themselves (pynetdicom's ``debug_logger``) get the filter too."""
    for logger in list(logging.Logger.manager.loggerDict.values()):
        for handler in getattr(logger, "handlers", ()):
            if not any(isinstance(f, ValueFree) for f in handler.filters):
                handler.addFilter(ValueFree())


class ValueFree(logging.Filter):
    """Drop or reduce library records that may carry patient data; strip exception messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _under(record.name, "pynetdicom") and record.levelno < logging.INFO:
            return False
        if _under(record.name, "pydicom") and record.levelno < logging.INFO:
            return False
        if _under(record.name, "pydicom") or record.name == "py.warnings":
            _reduce(record, f"{record.name} {record.module}.{record.funcName}: {WITHHELD}")
        elif isinstance(record.msg, BaseException):  # pynetdicom: LOGGER.exception(exc)
            _reduce(record, f"{describe(record.msg)} in {record.module}.{record.funcName}")
        record.args = _value_free_args(record.args)
        if record.exc_info:
            record.exc_text = value_free_traceback(record.exc_info[1])
            record.exc_info = None
        return True


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _reduce(record: logging.LogRecord, message: str) -> None:
    record.msg, record.args = message, ()


def _value_free_args(args: Any) -> Any:
    """An exception passed as a %-argument becomes its class name (its text may quote paths)."""
    if isinstance(args, tuple):
        return tuple(describe(a) if isinstance(a, BaseException) else a for a in args)
    return args


def describe(error: BaseException) -> str:
    """The class name of ``error``, with the errno name for OS errors: never its message."""
    name = type(error).__name__
    code = getattr(error, "errno", None) if isinstance(error, OSError) else None
    return f"{name} ({errno.errorcode.get(code, code)})" if code else name


def value_free_traceback(error: BaseException | None) -> str:
    """The traceback of ``error`` and its chain: frames and class names, no messages."""
    if error is None:
        return ""
    parts: list[str] = []
    _format_chain(error, parts, set())
    return "".join(parts).rstrip("\n")


def _format_chain(error: BaseException, parts: list[str], seen: set[int]) -> None:
    seen.add(id(error))
    for attribute, header in _CHAINED:
        linked = getattr(error, attribute)
        if attribute == "__context__" and (error.__cause__ or error.__suppress_context__):
            continue
        if linked is not None and id(linked) not in seen:
            _format_chain(linked, parts, seen)
            parts.append(f"\n{header}\n\n")
    if error.__traceback__ is not None:
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(error.__traceback__))
    parts.append(f"{describe(error)}: {WITHHELD}\n")


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` replacement: category and module, once per code location."""
    key = (category.__name__, filename, lineno)
    if key in _warned:
        return
    _warned.add(key)
    where = _module_name(filename)
    logging.getLogger("pacsbridge.warnings").warning(
        "%s from %s line %d (%s)", category.__name__, where, lineno, WITHHELD
    )


def _module_name(filename: str) -> str:
    """``.../site-packages/pydicom/valuerep.py`` → ``pydicom.valuerep`` (a code path, no data)."""
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/src/"):
        if marker in path:
            path = path.rsplit(marker, 1)[1]
            break
    else:
        path = path.rsplit("/", 1)[-1]
    return path.removesuffix(".py").replace("/", ".")


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread is not None else "?"
    log_crash(f"thread {name}", args.exc_type, args.exc_value)


def log_crash(where: str, kind: type[BaseException], error: BaseException | None) -> None:
    """Log an exception nobody caught, value-free (threads, the CLI's commands)."""
    log.critical("unhandled %s in %s", kind.__name__, where, exc_info=error)
