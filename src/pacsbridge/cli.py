"""The one CLI entry point: ``pacsbridge serve | worker | demo | check | db | config | users``.

Each command is a few lines: build Settings once, hand them to the runtime, run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pacsbridge import __version__, logs
from pacsbridge.settings import Settings

app = typer.Typer(
    help="pacsbridge: external study import and FSE retrieval.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # crashes go through pacsbridge.logs, value-free
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration commands.", no_args_is_help=True)
users_app = typer.Typer(help="Staff accounts of the support console.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(users_app, name="users")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML settings file (else PACSBRIDGE_CONFIG).",
        exists=True,
        dir_okay=False,
    ),
]


def _settings(config: Path | None, **web: object) -> Settings:
    settings = Settings.load(config)
    for key, value in web.items():
        if value is not None:
            setattr(settings.web, key, value)
    logs.use_format(settings.logging.format)
    return settings


@app.callback()
def _logging(
    log_level: Annotated[
        str, typer.Option(help="Log level (DEBUG, INFO, WARNING); lines stay value-free.")
    ] = "INFO",
) -> None:
    logs.configure(log_level)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port.")] = None,
    embedded_worker: Annotated[bool, typer.Option(help="Run job workers in-process.")] = True,
) -> None:
    """Run the web server (with an in-process worker unless --no-embedded-worker)."""
    from pacsbridge import runtime, server

    settings = _settings(config, host=host, port=port)
    _refuse_without_keys(settings)
    server.run(runtime.build(settings), embedded_worker=embedded_worker)


@app.command()
def worker(config: ConfigOption = None) -> None:
    """Run job workers only (scale-out: several machines on Redis + PostgreSQL)."""
    from pacsbridge import runtime, server

    server.run_worker(runtime.build(_settings(config)))


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path(
        "var/demo"
    ),
    port: Annotated[int, typer.Option(help="Web port.")] = 8000,
    pacs_port: Annotated[int, typer.Option(help="Demo PACS DICOM port (0: any free).")] = 0,
    run: Annotated[bool, typer.Option(help="Serve after printing the link.")] = True,
) -> None:
    """Everything on embedded defaults: demo PACS, sample media, web, worker, a launch link."""
    data_dir = data_dir.resolve()  # the demo PACS runs in a child process
    from pacsbridge import runtime, server
    from pacsbridge.demo import fse, launcher
    from pacsbridge.demo.pacs import DemoPacs
    from pacsbridge.demo.samples import write_demo_media
    from pacsbridge.imports import launch as launches

    launcher.exit_on_sigterm()
    scp_port = launcher.free_port()
    pacs = DemoPacs(
        data_dir / "pacs",
        pacs_port or launcher.free_port(),
        move_destination=("PACSBRIDGE", scp_port),
    )
    pacs.start()
    try:
        settings = launcher.demo_settings(data_dir, port, pacs.port, scp_port)
        media = write_demo_media(data_dir / "media")
        built = runtime.build(settings)
        answer = launches.launch(built.context, launcher.sample_launch(), actor="demo")
        launcher.print_banner(settings, pacs, media.cd, media.usb, answer.url)
        if run:
            fse.start(built.context, pacs.peer, data_dir / "media" / "fse")
            server.run(built)
    finally:
        pacs.stop()


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the configuration, C-ECHO the PACS, check migrations; exit 0 or 1."""
    from pacsbridge import checks

    results = checks.run_all(Settings.load(config))
    for name, ok, detail in results:
        typer.echo(f"{'OK ' if ok else 'ERR'} {name}: {detail}")
    raise typer.Exit(0 if all(ok for _, ok, _ in results) else 1)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply database migrations up to the latest."""
    from pacsbridge.db import migrate

    settings = Settings.load(config)
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)
    typer.echo("database is up to date")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the change is.")],
    config: ConfigOption = None,
) -> None:
    """Autogenerate a migration from the models (for developers; review it before committing)."""
    from pacsbridge import runtime
    from pacsbridge.db import migrate

    settings = Settings.load(config)
    migrate.upgrade(settings.database_url)
    migrate.new_revision(settings.database_url, message, runtime.metadata())


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective configuration (secrets masked) and the sources' store addresses.

    ``resolved_store_addresses``: what each source's ``host`` and ``store_addresses`` resolve
    to now, the only addresses our Storage SCP accepts that source's associations from.
    """
    from pacsbridge.retrievals.intruders import store_addresses

    settings = Settings.load(config)
    shown = {**settings.masked(), "resolved_store_addresses": store_addresses(settings)}
    typer.echo(json.dumps(shown, indent=2))


PasswordStdin = Annotated[
    bool,
    typer.Option(help="Read the password from standard input (automation), not a prompt."),
]


def _password(from_stdin: bool) -> str:
    """Never an argument: a command line lands in the shell history and in ``ps``."""
    if from_stdin:
        import sys

        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _staff_command(config: Path | None, change) -> None:  # noqa: ANN001 - Callable[[Context, str]]
    """Run one account change as ``cli:<system user>`` (the audit's actor); errors in Italian."""
    import getpass

    from pacsbridge import runtime
    from pacsbridge.errors import PacsbridgeError

    built = runtime.build(Settings.load(config))
    try:
        change(built.context, f"cli:{getpass.getuser()}")
    except PacsbridgeError as error:
        info = error.as_dict()
        typer.echo(f"{info['message']}: {info['detail']}", err=True)
        raise typer.Exit(1) from None


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="User name (letters, digits, . - _).")],
    role: Annotated[str, typer.Option(help="support or admin.")] = "support",
    name: Annotated[str, typer.Option(help="Full name shown in the console.")] = "",
    password_stdin: PasswordStdin = False,
    config: ConfigOption = None,
) -> None:
    """Create a staff account (asks for its password)."""
    from pacsbridge.staff import accounts

    password = _password(password_stdin)
    _staff_command(
        config, lambda ctx, actor: accounts.add(ctx, username, password, role, name, actor)
    )
    typer.echo(f"user {username} added ({role})")


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: PasswordStdin = False,
    config: ConfigOption = None,
) -> None:
    """Set a staff account's password (also lifts a lock-out)."""
    from pacsbridge.staff import accounts

    password = _password(password_stdin)
    _staff_command(config, lambda ctx, actor: accounts.set_password(ctx, username, password, actor))
    typer.echo(f"password of {username} changed")


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument(help="User name.")], config: ConfigOption = None
) -> None:
    """Disable a staff account; its open sessions end at once."""
    from pacsbridge.staff import accounts

    _staff_command(config, lambda ctx, actor: accounts.disable(ctx, username, actor))
    typer.echo(f"user {username} disabled")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _refuse_without_keys(settings: Settings) -> None:
    if not settings.ris.api_keys and not settings.fse.api_keys and not settings.demo:
        typer.echo("No RIS or FSE API key configured (ris.api_keys / fse.api_keys).", err=True)
        raise typer.Exit(2)


def main() -> None:
    logs.configure()  # value-free log lines only (docs/logging.md)
    try:
        app()
    except Exception as error:  # a crash is logged without its message (it may quote media paths)
        logs.log_crash("the command", type(error), error)
        raise SystemExit(1) from None
