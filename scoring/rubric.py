"""The scoring rubric: a versioned YAML file (scoring/rubrics/v<N>.yaml) validated with pydantic.

Everything that turns telemetry into a verdict and is a matter of policy lives in the rubric:
window rules (burn-in, slot and outage factors), what counts as delivered, QARTOD parameters per
device kind and metric, quality incidents, component weights, hard gates and bands. Its SHA-256
digest over the file's bytes goes into every reference record, so a reviewer knows exactly which
rules produced a verdict.

Versions: v3 (the default) is v2 with a residents' satisfaction component (`weights.residents`,
`residents.min_ratings`: scoring.residents) and a switch commands component (`weights.switch_commands`,
`switch_commands.min_commands`: scoring.commands), weighed but no gates. v2 keeps delivery and data quality apart — `delivery.counts: arrived`
(every reading that arrived counts for availability, completeness and outages, whatever its QC
flag), `delivery.completeness: per_measurement` (a profile device's completeness is the mean over
its declared measurements) and `quality.incident_factor` (long runs of QC fails are quality
incidents). v1 has no `delivery` or `quality` section and is still loaded and scored as it was:
`counts: valid` (a failed reading was a missing one), `completeness: per_reading`, no incidents.
Fields a version added are left out of the older versions' dumps when unset, so the parameter
digest their day summaries are stored under (scoring.daily.rubric_digest) stays as it was.

A rubric that does not parse or validate raises `RubricError` naming the field, e.g.
`rubric v1.yaml: gates.min_availability: Input should be less than or equal to 1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.kinds import DeviceKind
from pilotlab import versioned_yaml
from pilotlab.errors import RubricError
from store.readings import KIND_NUMERIC

Share = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
DEFAULT_VERSION = "3"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowRules(_Strict):
    burn_in_h: float = Field(ge=0)
    slot_factor: int = Field(ge=1, le=100)
    outage_factor: int = Field(ge=1, le=100)
    attrition_after_h: Positive


class DeliveryRules(_Strict):
    """What availability, completeness and outages count (scoring.delivery)."""

    counts: Literal["valid", "arrived"]  # v1: valid readings only; v2: every reading that arrived
    completeness: Literal["per_reading", "per_measurement"]


V1_DELIVERY = DeliveryRules(counts="valid", completeness="per_reading")


class QualityRules(_Strict):
    incident_factor: int = Field(ge=1, le=100)  # a run of QC fails longer than this x interval is an incident


class TimestampRules(_Strict):
    future_tolerance_s: float = Field(ge=0)
    max_skew_s: Positive


class Timeliness(_Strict):
    target_p95_s: Positive


class Heartbeat(_Strict):
    tolerance: Share


class Spike(_Strict):
    suspect: Positive
    fail: Positive

    @model_validator(mode="after")
    def _ordered(self) -> Spike:
        if self.fail < self.suspect:
            raise ValueError("fail must be at least suspect")
        return self


class RateOfChange(_Strict):
    suspect_per_s: Positive


class FlatLine(_Strict):
    suspect_s: Positive
    fail_s: Positive
    tolerance: Positive  # QARTOD flags a range strictly below it: 0 would never flag

    @model_validator(mode="after")
    def _ordered(self) -> FlatLine:
        if self.fail_s < self.suspect_s:
            raise ValueError("fail_s must be at least suspect_s")
        return self


class MetricQc(_Strict):
    """QARTOD parameters of one metric: gross range (sensor span = fail, user span = suspect) and
    the optional spike, rate-of-change and flat-line tests."""

    sensor_span: tuple[float, float]
    user_span: tuple[float, float]
    spike: Spike | None = None
    rate_of_change: RateOfChange | None = None
    flat_line: FlatLine | None = None

    @model_validator(mode="after")
    def _spans(self) -> MetricQc:
        lo, hi = self.sensor_span
        ulo, uhi = self.user_span
        if lo >= hi or ulo >= uhi:
            raise ValueError("a span is [low, high] with low < high")
        if ulo < lo or uhi > hi:
            raise ValueError("user_span must lie within sensor_span")
        return self


class Weights(_Strict):
    availability: float = Field(ge=0)
    completeness: float = Field(ge=0)
    quality: float = Field(ge=0)
    timeliness: float = Field(ge=0)
    battery: float = Field(ge=0)
    kind_specific: float = Field(ge=0)
    residents: float = Field(default=0.0, ge=0, exclude_if=lambda weight: weight == 0)  # from v3
    switch_commands: float = Field(default=0.0, ge=0, exclude_if=lambda weight: weight == 0)  # from v3

    @model_validator(mode="after")
    def _some_weight(self) -> Weights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one weight must be positive")
        return self


class ResidentsRules(_Strict):
    """The residents' satisfaction component (scoring.residents): (mean rating - 1) / 4 over the
    ratings of the pilot's window, not evaluated under `min_ratings` of them."""

    min_ratings: int = Field(ge=1)


class SwitchCommandRules(_Strict):
    """The switch commands component (scoring.commands): the share of the fleet's commands
    acknowledged by their expiry, not evaluated under `min_commands` of them."""

    min_commands: int = Field(ge=1)


class Gates(_Strict):
    min_duration_days: float = Field(ge=0)
    min_fleet_per_kind: int = Field(ge=1)
    min_availability: Share
    min_completeness: Share
    max_qc_fail_share: Share
    max_attrition: Share
    max_excluded_share: Share


class Bands(_Strict):
    eligible: float = Field(ge=0, le=100)
    conditional: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if self.conditional > self.eligible:
            raise ValueError("conditional must not exceed eligible")
        return self


class Rubric(_Strict):
    version: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    window: WindowRules
    delivery: DeliveryRules = V1_DELIVERY
    quality: QualityRules | None = None
    timestamps: TimestampRules
    timeliness: Timeliness
    heartbeat: Heartbeat
    qc: dict[DeviceKind, dict[str, MetricQc]]
    weights: Weights
    residents: ResidentsRules | None = Field(default=None, exclude_if=lambda rules: rules is None)
    switch_commands: SwitchCommandRules | None = Field(default=None, exclude_if=lambda rules: rules is None)
    p10_weight: Share
    gates: Gates
    bands: Bands

    @model_validator(mode="after")
    def _quality_apart(self) -> Rubric:
        if self.delivery.counts == "arrived" and self.quality is None:
            raise ValueError("delivery.counts 'arrived' needs a quality section (quality.incident_factor): "
                             "QC fails are no longer outages, so their long runs must be incidents")
        if self.delivery.counts == "valid" and self.quality is not None:
            raise ValueError("quality incidents need delivery.counts 'arrived': with 'valid' a run of QC fails "
                             "is an outage")
        return self

    @model_validator(mode="after")
    def _residents_rules(self) -> Rubric:
        if self.weights.residents > 0 and self.residents is None:
            raise ValueError("weights.residents needs a residents section (residents.min_ratings)")
        if self.weights.switch_commands > 0 and self.switch_commands is None:
            raise ValueError("weights.switch_commands needs a switch_commands section (switch_commands.min_commands)")
        return self

    @model_validator(mode="after")
    def _known_metrics(self) -> Rubric:
        for kind, metrics in self.qc.items():
            unknown = sorted(set(metrics) - set(KIND_NUMERIC[kind]))
            if unknown:
                raise ValueError(f"qc.{kind.value}: {unknown[0]!r} is not a metric of {kind.value}")
        return self


@dataclass(frozen=True)
class LoadedRubric:
    rubric: Rubric
    sha256: str  # hex digest of the file's bytes
    source: str


def load_rubric_bytes(data: bytes, source: str) -> LoadedRubric:
    """Parse and validate a rubric; RubricError names the file and the offending field."""
    rubric, digest = versioned_yaml.parse(data, source, Rubric, "rubric", RubricError)
    return LoadedRubric(rubric, digest, source)


def load_rubric(path: Path | None = None, *, version: str = DEFAULT_VERSION) -> LoadedRubric:
    """A rubric file given by path, else the bundled `scoring/rubrics/v<version>.yaml`."""
    return load_rubric_bytes(*versioned_yaml.read_file(path, version, "scoring.rubrics", "rubric", RubricError))
