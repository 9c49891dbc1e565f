"""The one typed settings object: a TOML file plus ``PACSBRIDGE_<SECTION>__<FIELD>`` variables.

Built once by the CLI (``Settings.load``) and passed down; nothing reads the environment at
import time. Every field's description feeds ``docs/configuration.md`` (a test fails on a
missing one). Precedence: environment variables over the TOML file over defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pacsbridge.settings.atna import AtnaSettings
from pacsbridge.settings.hl7 import Hl7Settings, MergeSettings, RisSettings
from pacsbridge.settings.operations import (
    HealthSettings,
    LoggingSettings,
    MetricsSettings,
    StaffSettings,
    ViewerSettings,
)
from pacsbridge.settings.tls import DicomTlsSettings, PeerTls, PeerTlsServerName, tls_problems

GiB = 1024**3


class DicomSettings(BaseModel):
    """Our own DICOM node: the AE that stores to the PACS and receives C-MOVEs."""

    ae_title: str = Field(
        "PACSBRIDGE", description="Our AE title (calling AE and move destination)."
    )
    host: str = Field("127.0.0.1", description="Address our Storage SCP listens on.")
    port: int = Field(11112, description="Port our Storage SCP listens on.")
    acse_timeout: float = Field(30, description="Seconds to wait for association set-up.")
    dimse_timeout: float = Field(120, description="Seconds to wait for a DIMSE response.")
    network_timeout: float = Field(60, description="Seconds of network silence before abort.")
    connection_timeout: float = Field(10, description="Seconds to wait for the TCP connection.")
    store_associations: int = Field(
        2,
        ge=1,
        le=16,
        description="Parallel associations used to C-STORE one import (bench/: 2 beat 1 and 4).",
    )
    fast_store: bool = Field(
        True,
        description="Send each ordinary C-STORE's data on the association's socket from the "
        "sending thread (docs/engineering-notes.md); false: pynetdicom sends every C-STORE.",
    )
    fast_receive: bool = Field(
        True,
        description="Receive each C-STORE of our Storage SCP straight off the association's "
        "socket into its cache file, and read C-MOVE responses on the calling thread "
        "(docs/engineering-notes.md); false: pynetdicom does both.",
    )
    tls: DicomTlsSettings = Field(
        default_factory=DicomTlsSettings, description="DICOM TLS (docs/pacs-setup.md)."
    )


class PacsSettings(BaseModel):
    """The hospital PACS that receives imports (C-FIND duplicates, C-STORE, IMAGE check)."""

    name: str = Field("PACS", description="Name shown to users in messages.")
    ae_title: str = Field("PACS", description="The PACS's AE title.")
    host: str = Field("127.0.0.1", description="The PACS's host name or address.")
    port: int = Field(4242, description="The PACS's DICOM port.")
    store_associations: int = Field(
        0,
        ge=0,
        le=16,
        description="Parallel C-STORE associations to this PACS; 0: dicom.store_associations."
        " 1 for a PACS that loses instances stored in parallel (docs/pacs-setup.md).",
    )
    tls: PeerTls = False
    tls_server_name: PeerTlsServerName = ""


class SourceSettings(BaseModel):
    """One hospital PACS the FSE gateway retrieves from (FSE spec §3)."""

    name: str = Field(description="Name used in retrieval requests (`source`).")
    ae_title: str = Field(description="The source PACS's AE title.")
    host: str = Field(description="The source PACS's host name or address.")
    port: int = Field(description="The source PACS's DICOM port.")
    max_concurrent_retrievals: int = Field(
        2, ge=1, description="Simultaneous retrievals allowed against this PACS."
    )
    image_level_queries: bool = Field(
        True, description="Whether this PACS answers IMAGE-level C-FIND queries."
    )
    store_ae_titles: list[str] = Field(
        default_factory=list,
        description="Calling AE titles this PACS uses when it C-STOREs to us; empty: ae_title.",
    )
    store_addresses: list[str] = Field(
        default_factory=list,
        description="Other hosts (names or addresses) this PACS C-STOREs to us from, besides "
        "`host`; resolved at start-up. Associations from any other address are rejected.",
    )
    tls: PeerTls = False
    tls_server_name: PeerTlsServerName = ""


class NamedApiKey(BaseModel):
    """An API key with the name of the client that holds it (the audit and ATNA name it)."""

    name: str = Field(min_length=1, max_length=64, description="Who holds the key.")
    key: SecretStr = Field(description="The bearer key.")


class FseSettings(BaseModel):
    """The regional health record gateway (the FSE spec)."""

    api_keys: list[SecretStr | NamedApiKey] = Field(
        default_factory=list,
        description="Bearer keys the FSE uses for /api/v1/retrievals: a key, or "
        '{name = "...", key = "..."} to name the client in the audit (a bare key is '
        '"fse-key-N", N its place in the list).',
    )
    retention_days: float = Field(45, gt=0, description="Days a retrieved study stays cached.")
    disk_high_water_percent: float = Field(
        90, gt=0, le=100, description="Refuse new retrievals above this disk usage."
    )
    disk_free_margin_bytes: int = Field(
        2 * GiB,
        ge=0,
        description="Free space always left on the cache disk: a study is moved only when free "
        "space less this margin covers its estimated size (else retried, then failed).",
    )
    estimated_instance_bytes: int = Field(
        1024**2, ge=0, description="Size assumed per expected instance when checking free space."
    )
    quiet_period_seconds: float = Field(
        5, ge=0, description="Wait for late C-STOREs after a C-MOVE before checking completeness."
    )
    move_timeout_seconds: float = Field(
        600, gt=0, description="Seconds a source may stay silent during a C-MOVE (then retried)."
    )
    expire_every_minutes: float = Field(60, gt=0, description="How often expiry runs.")
    attempts: int = Field(
        5, ge=1, description="Attempts a retrieval gets when a source is down or busy."
    )
    advertised_host: str = Field(
        "", description="Our address as hospital PACS must register it; empty: dicom.host."
    )


class ImportSettings(BaseModel):
    """What the import pipeline does to the files it stores (manual §5)."""

    reconcile: bool = Field(
        True, description="Store copies carrying the RIS identity (IHE IRWF); false: as they are."
    )
    institution_name: str = Field("", description="Our institution, in Contributing Equipment.")
    thumbnail_max_pixels: int = Field(
        40_000_000,
        gt=0,
        description="Largest frame (Rows x Columns) a preview decodes; a larger one, or a "
        "header that does not say, gets the grey placeholder without decoding.",
    )
    document_max_bytes: int = Field(
        50 * 1024 * 1024,
        gt=0,
        description="Largest PDF on a medium that may be imported with the images (wrapped as "
        "Encapsulated PDF); a larger one is named as a problem and never imported.",
    )


class StorageSettings(BaseModel):
    """Folders on disk."""

    data_dir: Path = Field(Path("var"), description="Root of uploads, work folders, cache, jobs.")
    retain_after_completion_hours: float = Field(
        0, ge=0, description="Keep an import's files this long after the PACS confirmed it."
    )
    free_margin_bytes: int = Field(
        64 * 1024**2,
        ge=0,
        description="Disk space left free: an archive that would eat it is refused.",
    )
    sweep_every_minutes: float = Field(
        5, gt=0, description="How often folders that no live import owns are removed."
    )


class UploadSettings(BaseModel):
    """Limits on uploaded media archives (zip-bomb and disk protection)."""

    max_archive_bytes: int = Field(20 * GiB, gt=0, description="Largest archive accepted.")
    max_uncompressed_bytes: int = Field(
        40 * GiB, gt=0, description="Largest total size of the extracted files."
    )
    max_entries: int = Field(200_000, gt=0, description="Most files in one archive.")
    max_ratio: float = Field(
        200, gt=1, description="Highest compression ratio of one entry and of the whole archive."
    )
    part_bytes: int = Field(
        32 * 1024**2,
        gt=0,
        description="Size of the browser's upload parts (32 MiB: 2.6x curl against 3.2x at "
        "8 MiB on loopback, bench/README.md; a failed part is sent again whole).",
    )
    part_wait_seconds: float = Field(
        30,
        ge=0,
        description="How long a part sent ahead waits for the part before it (else 409).",
    )
    max_part_bytes: int = Field(
        1 * GiB,
        gt=0,
        description="Largest body of one archive PUT (a part, or a whole archive at once): 413.",
    )


class JobSettings(BaseModel):
    """The job queue (Huey) and the ledger's retry budget."""

    backend: Literal["sqlite", "redis", "immediate"] = Field(
        "sqlite",
        description="sqlite: embedded; redis: shared by several workers; immediate: inline.",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL for backend=redis.")
    workers: int = Field(2, ge=1, description="Worker threads per worker process.")
    attempts: int = Field(120, ge=1, description="Attempts a phase gets ('N tentativi rimasti').")
    analysis_attempts: int = Field(
        3, ge=1, description="Starts an analysis gets (a worker killed mid-way) before it fails."
    )
    retry_delay_seconds: float = Field(30, ge=0, description="First delay between attempts.")
    max_retry_delay_seconds: float = Field(600, ge=0, description="Longest delay between attempts.")
    lease_seconds: float = Field(300, gt=0, description="A job silent this long is re-enqueued.")


class DatabaseSettings(BaseModel):
    """The database: SQLite by default, PostgreSQL by URL."""

    url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")


class WebSettings(BaseModel):
    """The HTTP server and the pages."""

    host: str = Field("127.0.0.1", description="Address the web server binds.")
    port: int = Field(8000, description="Port the web server binds.")
    public_url: str = Field("", description="Base URL in launch links; empty: http://host:port.")
    language: Literal["it", "en"] = Field("it", description="Default UI language.")
    monitor_timeout_seconds: float = Field(
        120, gt=0, description="Monitor shows 'Timeout' after this long without news."
    )
    max_body_bytes: int = Field(
        128 * 1024,
        gt=0,
        description="Largest JSON request body (confirm, retrieval); larger answers 413 unparsed.",
    )
    header_timeout_seconds: float = Field(
        10, gt=0, description="Seconds a client has to send a request's headers; then closed."
    )
    keep_alive_seconds: float = Field(
        5, gt=0, description="Seconds an idle keep-alive connection stays open."
    )
    body_idle_seconds: float = Field(
        30, gt=0, description="Seconds of silence allowed while a request body arrives (408)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
        "are believed (uvicorn forwarded_allow_ips; docs/deployment.md); [] for none.",
    )


class Settings(BaseSettings):
    """Everything pacsbridge can be told. See docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="PACSBRIDGE_", env_nested_delimiter="__", extra="forbid"
    )

    demo: bool = Field(False, description="Demo mode: allows the built-in demo secrets.")
    dicom: DicomSettings = Field(default_factory=DicomSettings, description="Our DICOM node.")
    pacs: PacsSettings = Field(default_factory=PacsSettings, description="The hospital PACS.")
    sources: list[SourceSettings] = Field(
        default_factory=list, description="FSE sources: hospital PACS to retrieve from."
    )
    ris: RisSettings = Field(default_factory=RisSettings, description="The RIS.")
    merge: MergeSettings = Field(default_factory=MergeSettings, description="Patient merge.")
    hl7: Hl7Settings = Field(default_factory=Hl7Settings, description="Our HL7 identity.")
    fse: FseSettings = Field(default_factory=FseSettings, description="FSE gateway.")
    imports: ImportSettings = Field(default_factory=ImportSettings, description="Import pipeline.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Folders.")
    upload: UploadSettings = Field(default_factory=UploadSettings, description="Upload limits.")
    jobs: JobSettings = Field(default_factory=JobSettings, description="Job queue.")
    viewer: ViewerSettings = Field(default_factory=ViewerSettings, description="Image viewer.")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="Database.")
    web: WebSettings = Field(default_factory=WebSettings, description="Web server and pages.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Readiness.")
    metrics: MetricsSettings = Field(
        default_factory=MetricsSettings, description="Prometheus metrics."
    )
    logging: LoggingSettings = Field(default_factory=LoggingSettings, description="Process log.")
    staff: StaffSettings = Field(default_factory=StaffSettings, description="Staff accounts.")
    atna: AtnaSettings = Field(default_factory=AtnaSettings, description="IHE ATNA audit trail.")

    @model_validator(mode="after")
    def _tls_complete(self) -> Settings:
        peers = [("the PACS", self.pacs.tls)]
        peers += [(f"source {s.name!r}", s.tls) for s in self.sources]
        problems = tls_problems(self.dicom.tls, peers)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the values given (the TOML file's content)."""
        return (env_settings, init_settings)

    @classmethod
    def load(cls, path: Path | None = None, **values: Any) -> Settings:
        """Read the TOML file (``path`` or ``PACSBRIDGE_CONFIG``) and the environment."""
        path = path or _env_path()
        data: dict[str, Any] = {}
        if path is not None:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{**data, **values})

    @property
    def database_url(self) -> str:
        """The configured URL, or SQLite inside the data folder."""
        return self.database.url or f"sqlite:///{self.storage.data_dir.resolve()}/pacsbridge.db"

    @property
    def public_url(self) -> str:
        """Base of the links we print and send (launch URL, monitor links)."""
        return (self.web.public_url or f"http://{self.web.host}:{self.web.port}").rstrip("/")

    def source(self, name: str) -> SourceSettings | None:
        """The FSE source with this name, if configured."""
        return next((s for s in self.sources if s.name == name), None)

    def masked(self) -> dict[str, Any]:
        """The effective configuration with secrets masked, for logs and `config show`."""
        return self.model_dump(mode="json")


def _env_path() -> Path | None:
    value = os.environ.get("PACSBRIDGE_CONFIG")
    return Path(value) if value else None
