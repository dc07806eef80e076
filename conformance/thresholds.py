"""The conformance profile: a versioned YAML file (conformance/profiles/v<N>.yaml) of the thresholds
a device is judged by, validated with pydantic, like the scoring rubric.

Its SHA-256 digest over the file's bytes goes into every report, and a run keeps the validated
thresholds it started with (conformance_run.thresholds), so a report made later, by another
process, judges by exactly those. A file that does not parse or validate raises ConfigError naming
the field, e.g. `conformance profile v1.yaml: clock.max_offset_s: Input should be greater than 0`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from pilotlab import versioned_yaml
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
    thresholds, digest = versioned_yaml.parse(data, source, Thresholds, "conformance profile", ConfigError)
    return LoadedThresholds(thresholds, digest, source)


def load_thresholds(path: Path | None = None, *, version: str = DEFAULT_VERSION) -> LoadedThresholds:
    """A conformance profile given by path, else the bundled `conformance/profiles/v<version>.yaml`."""
    return thresholds_from_bytes(*versioned_yaml.read_file(path, version, "conformance.profiles",
                                                           "conformance profile", ConfigError))


def stored_thresholds(stored: dict[str, Any], digest: str) -> LoadedThresholds:
    """The thresholds a run kept (conformance_run.thresholds and thresholds_digest)."""
    return LoadedThresholds(Thresholds.model_validate(stored), digest, f"v{stored.get('version')}")
