"""The one settings object, read once at the edge (CLI) and passed down.

Every field can be set by an environment variable `PILOTLAB_<FIELD>` (e.g. `PILOTLAB_DATABASE_URL`)
or by the matching CLI flag. Nothing else in pilotlab reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PILOTLAB_", extra="ignore")

    # Services. database_url None means "start the embedded PostgreSQL" (demo only).
    database_url: str | None = None
    mqtt_url: str | None = None
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    data_dir: Path = Path(".pilotlab")

    # Ingest
    share_group: str = Field(default="pilotlab-ingest", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    worker_id: str = Field(default="1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    session_expiry_s: int = Field(default=86_400, ge=0, le=4_294_967_295)
    receive_maximum: int = Field(default=1_000, ge=1, le=65_535)
    batch_size: int = Field(default=500, ge=1, le=65_535)
    batch_linger_ms: int = Field(default=50, ge=0, le=10_000)
    max_payload_bytes: int = Field(default=16_384, ge=64, le=268_435_455)
    registry_refresh_s: float = Field(default=10.0, gt=0)
    future_tolerance_s: int = Field(default=86_400, ge=0)

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65_535)

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

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise ConfigError("no database configured: set PILOTLAB_DATABASE_URL or --database-url")
        return self.database_url
