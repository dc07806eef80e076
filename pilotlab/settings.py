"""The one settings object, read once at the edge (CLI) and passed down.

Every field can be set by an environment variable `PILOTLAB_<FIELD>` (e.g. `PILOTLAB_DATABASE_URL`)
or by the matching CLI flag. Nothing else in pilotlab reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pilotlab.errors import ConfigError

TOPIC_ROOT = "pilotlab/v1"


class MqttEndpoint:
    """A parsed `mqtt://[user:pass@]host[:port]` (or `mqtts://`) URL."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ConfigError(f"MQTT URL {url!r} names no host")
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.host = parts.hostname
        try:
            self.port = parts.port or (8883 if self.tls else 1883)
        except ValueError as exc:
            raise ConfigError(f"MQTT URL {url!r} has a bad port") from exc
        self.username = parts.username
        self.password = parts.password

    def __repr__(self) -> str:
        return f"MqttEndpoint({'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port})"


class NetworkServerSource(BaseModel):
    """One MQTT source of LoRaWAN network-server events (ingest.sources).

    ChirpStack v4 publishes to a broker pilotlab subscribes to (url None: pilotlab's own broker,
    QoS 1 and a shared subscription by default). The Things Stack runs its own MQTT server:
    MQTT 3.1.1, QoS 0 only, username "{application}@{tenant}", password an API key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    network_server: Literal["chirpstack", "tts"]
    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    protocol: Literal["3.1.1", "5"] = "5"
    qos: Literal[0, 1] = 1
    topics: tuple[str, ...] | None = None  # None: the network server's default uplink and join topics
    shared: bool = True  # MQTT 5 shared subscription among ingest workers
    fcnt_bits: Literal[16, 32] = 32  # both ChirpStack v4 and TTS v3 report the full 32-bit counter

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: str | None) -> str | None:
        if value is not None:
            MqttEndpoint(value)
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PILOTLAB_", extra="ignore")

    # Services. database_url None means "start the embedded PostgreSQL" (demo only).
    database_url: str | None = None
    mqtt_url: str | None = None
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    # The broker's dynamic-security admin account (access.sync): unset means no broker sync
    broker_admin_username: str | None = None
    broker_admin_password: SecretStr | None = None
    # Largest HTTP request body the API reads (413 beyond; counted in its metrics)
    api_max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    # Longest one SQL statement of an API request may run (PostgreSQL statement_timeout; 503 beyond)
    api_statement_timeout_s: float = Field(default=30.0, gt=0, le=3_600)
    data_dir: Path = Path(".pilotlab")

    # Ingest
    share_group: str = Field(default="pilotlab-ingest", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    worker_id: str = Field(default="1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    session_expiry_s: int = Field(default=86_400, ge=0, le=4_294_967_295)
    receive_maximum: int = Field(default=1_000, ge=1, le=65_535)
    batch_size: int = Field(default=500, ge=1, le=65_535)
    batch_linger_ms: int = Field(default=50, ge=0, le=10_000)
    max_payload_bytes: int = Field(default=16_384, ge=64, le=268_435_455)
    # How much of a refused payload a dead letter keeps (its true size and full SHA-256 are kept
    # too): real messages are 60-400 bytes and gateway batches a few KiB, so those stay whole
    dead_letter_prefix_bytes: int = Field(default=4_096, ge=0, le=268_435_455)
    registry_refresh_s: float = Field(default=10.0, gt=0)
    future_tolerance_s: int = Field(default=86_400, ge=0)
    # LPWA network-server sources: a JSON list (PILOTLAB_LPWA_SOURCES) and/or a JSON file of one
    lpwa_sources: list[NetworkServerSource] = Field(default_factory=list)
    lpwa_sources_file: Path | None = None
    # Vendor JavaScript codecs, per call (devices.codecs.javascript.JsCodecLimits); the stack stays
    # well under a thread's 8 MiB, as QuickJS checks this bound and not the real stack
    js_codec_time_limit_ms: int = Field(default=100, ge=1, le=10_000)
    js_codec_memory_limit_mb: int = Field(default=16, ge=1, le=1_024)
    js_codec_stack_limit_kb: int = Field(default=256, ge=64, le=2_048)
    js_codec_cache_size: int = Field(default=256, ge=1, le=100_000)
    js_codec_cache_memory_mb: int = Field(default=128, ge=1, le=65_536)  # all cached codecs together
    js_codec_cpu_budget_ms_per_s: float = Field(default=500.0, gt=0, le=1_000)  # per codec, averaged
    # Prometheus /metrics of this worker: 0 = off (ingest/metrics.py)
    metrics_port: int = Field(default=0, ge=0, le=65_535)
    metrics_host: str = "127.0.0.1"

    # Grafana (`pilotlab grafana provision`): its URL, a service-account token with the Admin role,
    # and the PostgreSQL URL Grafana itself should use (default: database_url; ideally read-only)
    grafana_url: str = "http://127.0.0.1:3000"
    grafana_token: SecretStr | None = None
    grafana_database_url: str | None = None

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65_535)

    # Scoring (scoring/): Ed25519 private key (PEM, PKCS#8) that signs reference records; a rubric
    # file to use instead of the bundled scoring/rubrics/v3.yaml; daily rescoring in the API
    signing_key: Path | None = None
    rubric: Path | None = None
    daily_rescoring: bool = False

    # Residents' feedback (store/feedback.py, store/client_hashes.py): the public form's limits per
    # client (salted address hash) and per sticker code, the window a repeated response is counted once
    # in, how long a client hash is kept (its salt is replaced every such period), and the address
    # residents reach the pages at, printed in the QR stickers (default: the one the sheet is opened at)
    feedback_per_client_per_hour: int = Field(default=5, ge=1, le=10_000)
    feedback_per_code_per_hour: int = Field(default=30, ge=1, le=100_000)
    feedback_duplicate_window_h: float = Field(default=24.0, gt=0, le=720)
    feedback_client_retention_days: int = Field(default=90, ge=1, le=3_660)
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/?#]+(/[^?#]*)?$")

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_parses(cls, value: str | None) -> str | None:
        if value is not None:
            MqttEndpoint(value)
        return value

    @property
    def mqtt(self) -> MqttEndpoint:
        if self.mqtt_url is None:
            raise ConfigError("no MQTT broker configured: set PILOTLAB_MQTT_URL or --mqtt-url")
        return MqttEndpoint(self.mqtt_url)

    @property
    def ingest_client_id(self) -> str:
        """Stable per worker: on Mosquitto the client id owns the worker's share of messages."""
        return f"{self.share_group}-{self.worker_id}"

    def network_server_sources(self) -> list[NetworkServerSource]:
        """`lpwa_sources` plus those listed in `lpwa_sources_file`; ConfigError if unreadable."""
        sources = list(self.lpwa_sources)
        if self.lpwa_sources_file is not None:
            try:
                sources += TypeAdapter(list[NetworkServerSource]).validate_json(self.lpwa_sources_file.read_bytes())
            except OSError as exc:
                raise ConfigError(f"cannot read the LPWA sources file {self.lpwa_sources_file}: {exc.strerror}") from None
            except ValidationError as exc:
                raise ConfigError(f"LPWA sources file {self.lpwa_sources_file}: {exc.errors()[0]['msg']} "
                                  f"at {'.'.join(map(str, exc.errors()[0]['loc']))}") from None
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"LPWA source names must be unique: {names}")
        return sources

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise ConfigError("no database configured: set PILOTLAB_DATABASE_URL or --database-url")
        return self.database_url
