"""`pacsbridge demo`: its settings, the sample launch and the printed banner.

The CLI composes these with the runtime (this package sits below it and never imports it).
"""

from __future__ import annotations

import signal
import socket
from datetime import date
from pathlib import Path

import typer

from pacsbridge.demo.pacs import DemoPacs
from pacsbridge.imports.schemas import LaunchRequest
from pacsbridge.settings import Settings

DEMO_RIS_KEY = "demo-ris-key"
DEMO_FSE_KEY = "demo-fse-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind the demo like Ctrl-C, so every ``finally`` (demo PACS) runs.

    uvicorn catches SIGTERM while serving, shuts down, then raises the signal again with the
    handler that was there before; with Python's default one the process dies on the spot,
    skipping the clean-up that stops the demo PACS child. This handler exits instead.
    """

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def demo_settings(data_dir: Path, port: int, pacs_port: int, scp_port: int) -> Settings:
    return Settings(
        demo=True,
        storage={"data_dir": data_dir.resolve()},
        web={"host": "127.0.0.1", "port": port},
        dicom={"ae_title": "PACSBRIDGE", "host": "127.0.0.1", "port": scp_port},
        pacs={"name": "PACS demo", "ae_title": "DEMOPACS", "host": "127.0.0.1", "port": pacs_port},
        sources=[{"name": "demo", "ae_title": "DEMOPACS", "host": "127.0.0.1", "port": pacs_port}],
        ris={"api_keys": [DEMO_RIS_KEY]},
        fse={"api_keys": [DEMO_FSE_KEY]},
        jobs={"backend": "sqlite", "retry_delay_seconds": 5},
    )


def sample_launch() -> LaunchRequest:
    return LaunchRequest.model_validate(
        {
            "patient": {
                "id": "IOTELU1234",
                "issuer": "AO17",
                "family_name": "TEST",
                "given_name": "TEST",
                "birth_date": date(1974, 1, 1),
                "sex": "M",
            },
            "order": {
                "number": "ORD-1",
                "accession_number": "ACC0001",
                "description": "ESAME IMPORTATO",
            },
            "operator": {"id": "demo", "name": "Operatore Demo"},
        }
    )


def print_banner(settings: Settings, pacs: DemoPacs, cd: Path, usb: Path, url: str) -> None:
    lines = [
        "",
        "pacsbridge demo is ready.",
        f"  Launch link (patient TEST TEST, order ORD-1):  {url}",
        f"  RIS API key:   {DEMO_RIS_KEY}   (POST {settings.public_url}/api/v1/launch)",
        f"  FSE API key:   {DEMO_FSE_KEY}   (POST {settings.public_url}/api/v1/retrievals)",
        f"  Demo PACS:     AE {pacs.ae_title} at 127.0.0.1:{pacs.port}",
        f"  Our AE:        {settings.dicom.ae_title} at 127.0.0.1:{settings.dicom.port}",
        f"  Sample CD (with DICOMDIR):   {cd}",
        f"  Sample USB (loose files):    {usb}",
        "",
    ]
    typer.echo("\n".join(lines))
