"""Real PostgreSQL and Redis (on 127.0.0.1) and real ``pacsbridge worker`` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import FSE_KEY, RIS_KEY
from pacsbridge.demo.launcher import free_port
from pacsbridge.settings import Settings


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database number of its own, flushed after the test."""
    url = "redis://127.0.0.1:6379/{db}"
    client = redis.Redis.from_url(url.format(db=0))
    try:
        client.ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 (scripts/install-test-deps): {error}")
    db = 1 + uuid.uuid4().int % 14
    yield url.format(db=db)
    redis.Redis.from_url(url.format(db=db)).flushdb()


def toml_text(values: dict[str, Any], prefix: str = "") -> str:
    """Just enough TOML: nested tables of scalars and lists, and lists of tables (``[[x]]``).

    JSON literals of strings, numbers, booleans and lists of those are valid TOML.
    """
    plain = {k: v for k, v in values.items() if not isinstance(v, dict) and not _tables(v)}
    scalars = [f"{k} = {json.dumps(v)}" for k, v in plain.items()]
    text = (f"[{prefix}]\n" if prefix and scalars else "") + "\n".join(scalars) + "\n"
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            text += toml_text(value, name)
        elif _tables(value):
            for table in value:
                text += f"[[{name}]]\n" + toml_text(table).lstrip("\n")
    return text


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            merge(merged[key], value) if isinstance(value, dict) and key in merged else value
        )
    return merged


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def deployment(tmp_path: Path, make_client) -> Iterator[Callable[..., Any]]:  # noqa: ANN001
    """Write a config file, build the web side on it, start ``pacsbridge worker`` processes.

    ``client = deployment({...settings...})``; ``client.config`` is the file, and
    ``client.start_worker()`` starts one more worker process on it (killed after the test).
    """
    workers: list[subprocess.Popen[bytes]] = []

    def make(values: dict[str, Any]) -> Any:
        base = {
            "storage": {"data_dir": str(tmp_path / "data")},
            "ris": {"api_keys": [RIS_KEY]},
            "fse": {"api_keys": [FSE_KEY]},
            "dicom": {"port": free_port()},
        }
        config = tmp_path / "pacsbridge.toml"
        config.write_text(toml_text(merge(base, values)), encoding="utf-8")
        client = make_client(Settings.load(config))

        def start_worker() -> subprocess.Popen[bytes]:
            log = (tmp_path / f"worker-{len(workers)}.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "pacsbridge", "worker", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("PACSBRIDGE_")},
            )
            workers.append(process)
            return process

        client.config = config
        client.start_worker = start_worker
        return client

    yield make
    for process in workers:
        process.kill()
        process.wait(timeout=30)
