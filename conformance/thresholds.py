"""The conformance profile: a versioned YAML file (conformance/profiles/v<N>.yaml) of the thresholds
a device is judged by, validated with pydantic, like the scoring rubric.

Its SHA-256 digest over the file's bytes goes into every report, and a run keeps the validated
thresholds it started with (conformance_run.thresholds), so a report made later, by another
process, judges by exactly those. A file that does not parse or validate raises ConfigError naming
the field, e.g. `conformance profile v1.yaml: clock.max_offset_s: Input should be greater than 0`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pilotlab.errors import ConfigError

DEFAULT_VERSION = "1"
Share = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunRules(_Strict):
    default_duration_s: int = Field(ge=1, le=7 * 86_400)
    min_intervals: int = Field(ge=2, le=1_000)
    settle_s: float = Field(ge=0, le=600)


class IntervalRules(_Strict):
    tolerance: Share
    percentile: float = Field(gt=0, le=100)


class ClockRules(_Strict):
    max_offset_s: float = Field(gt=0)


class SequenceRules(_Strict):
    max_missing_share: Share


class PayloadRules(_Strict):
    max_rejected: int = Field(ge=0)


class MeasurementRules(_Strict):
    min_readings: int = Field(ge=1)


class QosRules(_Strict):
    min_qos: int = Field(ge=0, le=2)


class Thresholds(_Strict):
    version: str = Field(min_length=1, max_length=32)
    run: RunRules
    interval: IntervalRules
    clock: ClockRules
    sequence: SequenceRules
    payloads: PayloadRules
    measurements: MeasurementRules
    qos: QosRules


@dataclass(frozen=True)
class LoadedThresholds:
    thresholds: Thresholds
    digest: str   # SHA-256 hex of the file's bytes
    source: str   # the file's name, for messages

    def stored(self) -> dict[str, Any]:
        """What a run keeps: the validated thresholds (conformance_run.thresholds)."""
        return self.thresholds.model_dump(mode="json")


def thresholds_from_bytes(data: bytes, source: str) -> LoadedThresholds:
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"conformance profile {source}: not valid YAML: {first}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"conformance profile {source}: expected a mapping at the top level")
    try:
        thresholds = Thresholds.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"conformance profile {source}: {where}: {err['msg']}") from None
    return LoadedThresholds(thresholds, hashlib.sha256(data).hexdigest(), source)


def load_thresholds(path: Path | None = None, *, version: str = DEFAULT_VERSION) -> LoadedThresholds:
    """A conformance profile given by path, else the bundled `conformance/profiles/v<version>.yaml`."""
    if path is not None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"conformance profile {path}: cannot read: {exc.strerror}") from None
        return thresholds_from_bytes(data, Path(path).name)
    entry = resources.files("conformance.profiles").joinpath(f"v{version}.yaml")
    if not entry.is_file():
        raise ConfigError(f"conformance profile version {version!r} is not bundled (conformance/profiles/v{version}.yaml)")
    return thresholds_from_bytes(entry.read_bytes(), f"v{version}.yaml")


def stored_thresholds(stored: dict[str, Any], digest: str) -> LoadedThresholds:
    """The thresholds a run kept (conformance_run.thresholds and thresholds_digest)."""
    return LoadedThresholds(Thresholds.model_validate(stored), digest, f"v{stored.get('version')}")
