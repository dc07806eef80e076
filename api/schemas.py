"""HTTP request and response bodies.

Request bodies refuse unknown fields, so a misspelt field is a 422 naming it rather than a change
silently not made. `...Update` bodies are PATCHes: only the fields sent are changed. Optional fields
default to None for "not sent", but an explicit null is refused unless the field is in the body's
`NULLABLE` (columns that may be empty, e.g. a pilot's `ends_at`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from access.credentials import RESERVED_PREFIX
from devices.contract import ID_PATTERN
from devices.kinds import Connectivity, DeviceKind
from devices.profiles import ProfileDefinition

Id = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$"),
               Field(description="1-64 characters of A-Z a-z 0-9 _ . -", examples=["pilot-01"])]


def _not_reserved(value: str) -> str:
    # Refused here, before any row is written: the id becomes the MQTT client id, and the broker
    # would give it no account (access.credentials), so registering it could only half-succeed.
    if value.startswith(RESERVED_PREFIX):
        raise ValueError(f"{value!r} begins with {RESERVED_PREFIX!r}, the MQTT client-id prefix reserved for "
                         "pilotlab's own services (ingest workers); choose an id without it")
    return value


ClientId = Annotated[Id, AfterValidator(_not_reserved),
                     Field(description=f"1-64 characters of A-Z a-z 0-9 _ . -, not beginning with {RESERVED_PREFIX!r} "
                                       "(reserved for pilotlab's services); also the MQTT username and client id",
                           examples=["gw-01"])]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=2000)]
Stage = Annotated[int, Field(ge=1, le=4, description="living-lab stage 1-4")]
IntervalS = Annotated[int, Field(ge=1, le=604_800, description="declared reporting interval, seconds")]
PilotStatus = Literal["planned", "running", "completed", "cancelled"]
GatewayProtocol = Literal["wifi", "lorawan", "cellular"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _null_only_where_nullable(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name not in cls.NULLABLE:
            raise ValueError("cannot be null; leave the field out to keep its value or default")
        return value


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- broker credentials (access/) --------------------------------------------------------------

class CredentialOut(BaseModel):
    username: str
    kind: str
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    revoke_reason: str | None
    broker_synced: bool | None = Field(default=None, description="pushed to the broker now (null: no broker sync configured)")


class IssuedCredentialOut(CredentialOut):
    mqtt_username: str
    mqtt_password: str = Field(description="shown only in this answer; pilotlab keeps a hash")


# --- firms -------------------------------------------------------------------------------------

class FirmCreate(Body):
    NULLABLE = frozenset({"contact"})
    id: Id
    name: Name
    contact: Text | None = None


class FirmUpdate(Body):
    NULLABLE = frozenset({"contact"})
    name: Name | None = None
    contact: Text | None = None


class FirmOut(Out):
    id: str
    name: str
    contact: str | None
    created_at: datetime


# --- pilots ------------------------------------------------------------------------------------

class PilotCreate(Body):
    NULLABLE = frozenset({"ends_at"})
    id: Id
    firm_id: Id
    name: Name
    site: Name
    stage: Stage = 3
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    status: PilotStatus = "planned"


class PilotUpdate(Body):
    NULLABLE = frozenset({"ends_at"})
    name: Name | None = None
    site: Name | None = None
    stage: Stage | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    status: PilotStatus | None = None


class PilotOut(Out):
    id: str
    firm_id: str
    name: str
    site: str
    stage: int
    starts_at: datetime
    ends_at: datetime | None
    status: str
    created_at: datetime


# --- gateways ----------------------------------------------------------------------------------

class GatewayCreate(Body):
    NULLABLE = frozenset({"description"})
    id: ClientId
    pilot_id: Id
    protocol: GatewayProtocol
    description: Text | None = None
    commissioned_at: AwareDatetime | None = Field(default=None, description="default: now")


class GatewayUpdate(Body):
    NULLABLE = frozenset({"description"})
    protocol: GatewayProtocol | None = None
    description: Text | None = None
    commissioned_at: AwareDatetime | None = None


class GatewayOut(Out):
    id: str
    pilot_id: str
    protocol: str
    description: str | None
    commissioned_at: datetime
    decommissioned_at: datetime | None
    decommission_reason: str | None
    created_at: datetime


class GatewayRegisteredOut(GatewayOut):
    credentials: IssuedCredentialOut = Field(description="its MQTT account: the password is shown only here")


BROKER_SYNCED = ("true: the broker's accounts and ACLs took this change at once; null: no broker admin account is "
                 "configured, so the broker keeps its previous ACLs until `pilotlab broker sync` (logged)")


class GatewayChangedOut(GatewayOut):
    broker_synced: bool | None = Field(description=BROKER_SYNCED)


# --- devices -----------------------------------------------------------------------------------

class DeviceCreate(Body):
    NULLABLE = frozenset({"gateway_id", "model"})
    id: ClientId
    kind: DeviceKind
    pilot_id: Id
    connectivity: Connectivity
    reporting_interval_s: IntervalS
    gateway_id: Id | None = None
    model: Name | None = None
    commissioned_at: AwareDatetime | None = Field(default=None, description="default: now")


class DeviceUpdate(Body):
    """Kind and pilot are fixed for a device's life: stored readings are read by its kind."""

    NULLABLE = frozenset({"gateway_id", "model"})

    connectivity: Connectivity | None = None
    reporting_interval_s: IntervalS | None = None
    gateway_id: Id | None = None
    model: Name | None = None
    commissioned_at: AwareDatetime | None = None


class DeviceOut(Out):
    id: str
    kind: DeviceKind
    pilot_id: str
    connectivity: Connectivity
    reporting_interval_s: int
    gateway_id: str | None
    model: str | None
    commissioned_at: datetime
    decommissioned_at: datetime | None
    decommission_reason: str | None
    created_at: datetime
    profile_id: str | None = Field(default=None, description="the device profile its payloads are decoded by "
                                                             "(PUT /devices/{id}/profile)")


class DeviceRegisteredOut(DeviceOut):
    credentials: IssuedCredentialOut = Field(description="its MQTT account: the password is shown only here")


class DeviceChangedOut(DeviceOut):
    broker_synced: bool | None = Field(description=BROKER_SYNCED)


class Decommission(Body):
    NULLABLE = frozenset({"at"})
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    at: AwareDatetime | None = Field(default=None, description="when it was taken out of service; default now")


# --- telemetry ---------------------------------------------------------------------------------

class ReadingOut(Out):
    device_time: datetime
    ingest_time: datetime
    seq: int
    channel: str
    values: dict[str, Any] = Field(description="the columns this message filled, by name")
    profile_version: int | None = Field(description="the device profile version that decoded it; "
                                                    "null: a contract v1 payload")
    extra: dict[str, Any] | None = Field(description="what its profile's mapping did not take from the codec's "
                                                     "output (telemetry.extra; over 16 KiB of JSON only "
                                                     "{\"_truncated\": true, \"_chars\": n}); null: nothing")


class MetricStatsOut(Out):
    avg: float
    min: float
    max: float
    count: int = Field(description="messages in the bucket that carried this metric")


class BucketOut(Out):
    start: datetime
    count: int = Field(description="messages in the bucket")
    metrics: dict[str, MetricStatsOut]


class TelemetryPage(BaseModel):
    device_id: str
    kind: DeviceKind
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    channel: str | None
    limit: int
    truncated: bool = Field(description="more rows matched than `limit`; narrow the range or page by `from`")


class RawTelemetry(TelemetryPage):
    readings: list[ReadingOut]


class BucketedTelemetry(TelemetryPage):
    bucket: str
    buckets: list[BucketOut]


# --- health ------------------------------------------------------------------------------------

class DeviceHealthOut(Out):
    device_id: str
    pilot_id: str
    kind: str
    reporting_interval_s: int
    last_seen: datetime | None = Field(description="when pilotlab last received a message from it (arrival time)")
    last_device_time: datetime | None = Field(description="the device's own time of its newest message")
    last_ingest_time: datetime | None = Field(description="when that newest message (by device time) arrived")
    online: bool
    battery_pct: float | None
    messages_24h: int
    decommissioned: bool
    checked_at: datetime


class PilotHealthOut(BaseModel):
    pilot_id: str
    devices: int
    online: int
    offline: int = Field(description="in service but silent for more than the online window")
    decommissioned: int
    device_health: list[DeviceHealthOut]


class TimescaleJobOut(BaseModel):
    job_id: int
    name: str = Field(description="the job's procedure, e.g. policy_refresh_continuous_aggregate")
    target: str | None = Field(description="the hypertable or continuous aggregate it works on")
    schedule_interval_s: float
    last_run_status: str | None = Field(description="Success or Failed; null before its first run")
    last_run_started_at: datetime | None
    last_successful_finish: datetime | None
    next_start: datetime | None
    total_runs: int
    total_failures: int
    last_error: str | None = Field(description="the message of its latest failure (job_errors)")
    last_error_at: datetime | None
    known_cause: str | None = Field(description="set when the latest failure is a known fault: on PostgreSQL 15.20 "
                                                "TimescaleDB 2.28 logs every scheduled run as failed after its work "
                                                "is done (still counted as a failure)")


class CompressionOut(BaseModel):
    hypertable: str
    chunks: int
    compressed_chunks: int
    overdue_chunks: int = Field(description="chunks past the compression policy's age still uncompressed: "
                                            "the policy is not keeping up, or not running")
    bytes_before: int | None = Field(description="size of the compressed chunks before compression")
    bytes_after: int | None = Field(description="and after")


class TimescaleHealth(BaseModel):
    failing_jobs: int = Field(description="background jobs whose last run failed")
    jobs: list[TimescaleJobOut]
    compression: list[CompressionOut]


class ServiceHealth(BaseModel):
    ok: bool = Field(description="the API can serve: its database answers and is migrated")
    database: bool
    schema_version: int | None
    timescaledb: bool | None
    timescaledb_health: TimescaleHealth | None = Field(
        default=None, description="TimescaleDB's background jobs (failures included) and chunk compression; null on "
                                  "plain PostgreSQL. Failing jobs do not change `ok`: the operator must look here")


# --- dead letters ------------------------------------------------------------------------------

class DeadLetterOut(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    pilot_id: str | None
    device_id: str | None
    size_bytes: int = Field(description="the true size of the payload, whatever was kept")
    payload_truncated: bool = Field(description="only the first dead_letter_prefix_bytes of the payload were kept")
    payload_base64: str = Field(description="the payload as kept (its first bytes if payload_truncated)")
    payload_preview: str = Field(description="the payload as UTF-8 (undecodable bytes replaced), truncated")


class DeadLetterPage(BaseModel):
    limit: int
    truncated: bool
    dead_letters: list[DeadLetterOut]


class Problem(BaseModel):
    """The body of every 4xx/5xx answer."""

    detail: str
    errors: list[dict[str, str]] | None = None


# --- device profiles (devices.profiles) ----------------------------------------------------------

class DeviceProfileCreate(ProfileDefinition):
    """Version 1 of a profile: its id, its owner and the definition's fields."""

    id: Id
    firm_id: Id | None = Field(default=None, description="the owning firm: a firm key's own by default; "
                                                         "left out by an admin: a public profile any firm may use")

    def definition(self) -> ProfileDefinition:
        return ProfileDefinition.model_validate(self.model_dump(exclude={"id", "firm_id"}, by_alias=True))


class DeviceProfileOut(BaseModel):
    id: str
    firm_id: str | None = Field(description="the owning firm; null: a public profile (made by an admin)")
    kind: DeviceKind
    current_version: int
    version: int = Field(description="the version shown (the current one unless ?version=)")
    version_created_at: datetime
    created_at: datetime
    updated_at: datetime
    definition: dict[str, Any] = Field(description="that version's definition, as validated and stored")


class DeviceProfileVersionOut(Out):
    version: int
    created_at: datetime
    vendor: str
    model: str
    firmware_version: str


class DeviceProfileRef(Body):
    NULLABLE = frozenset({"profile_id"})
    profile_id: Id | None = Field(description="a profile of the device's firm or a public one, of the device's kind; "
                                              "null: none (contract v1 payloads only)")


# --- scores (scoring.breakdown) ------------------------------------------------------------------
# Times are RFC 3339 strings in UTC, as scoring writes them (records.plain). A signed record's
# evidence holds the same breakdown.

class WindowOut(BaseModel):
    start: str
    end: str


class RatioOut(BaseModel):
    numerator: float
    denominator: float
    value: float | None = Field(description="numerator / denominator; null when the denominator is 0")


class AvailabilityOut(RatioOut):
    unit: Literal["slots"] = Field(description="slots (slot_factor x interval) with a delivered reading / slots")


class MeasurementOut(BaseModel):
    carried: int = Field(description="delivered readings carrying the measurement")
    expected: int


class CompletenessOut(RatioOut):
    rule: Literal["per_reading", "per_measurement"]
    complete_readings: int = Field(description="delivered readings carrying every measurement their profile "
                                               "version declares")
    measurements: dict[str, MeasurementOut] | None = Field(description="per declared measurement; null without a profile")


class DuplicatesOut(BaseModel):
    dropped_at_ingest: int = Field(description="messages ingest already held (same seq and device time)")
    repeated_device_time: int = Field(description="stored readings repeating the previous one's device time")


class RejectedOut(BaseModel):
    total: int
    by_reason: dict[str, int] = Field(description="per dead-letter reason code")


class DeliveriesOut(BaseModel):
    stored: int
    delivered: int
    duplicates: DuplicatesOut
    rejected: RejectedOut


class LatencyOut(BaseModel):
    p50_s: float | None
    p95_s: float | None
    method: str = Field(description="histogram (within 1 %) here; exact in a signed record")


class QcTestCountsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    pass_: int = Field(alias="pass")
    suspect: int
    fail: int
    not_evaluated: int = Field(description="QARTOD 2 (no neighbour) or 9 (measurement absent)")


class QcOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    counted: int = Field(description="QC-counted readings (rubric v2: the delivered ones)")
    pass_: int = Field(alias="pass")
    suspect: int
    fail: int
    tests: dict[str, QcTestCountsOut]


class PeriodOut(BaseModel):
    start: str
    end: str = Field(description="the window end when open")
    duration_s: float
    open: bool = Field(description="not ended by the window end")


class IncidentOut(PeriodOut):
    tests: list[str] = Field(description="the QC tests that failed during it")


class OutagesOut(BaseModel):
    count: int
    open: int
    down_s: float
    mttr_s: float | None
    lost: bool
    periods: list[PeriodOut]


class IncidentsOut(BaseModel):
    count: int
    open: int
    duration_s: float
    periods: list[IncidentOut]


class BatteryOut(BaseModel):
    slope_pct_per_day: float | None
    projected_days: float | None
    claimed_days: float | None
    ratio: float | None = Field(description="min(1, projected / claimed)")
    reason: str | None = Field(description="why the ratio is 0 or missing")


class DeviceBreakdownOut(BaseModel):
    device_id: str
    kind: DeviceKind
    window: WindowOut
    availability: AvailabilityOut
    completeness: CompletenessOut
    deliveries: DeliveriesOut
    latency: LatencyOut
    qc: QcOut
    outages: OutagesOut
    quality_incidents: IncidentsOut | None = Field(description="null under rubric v1 (a run of QC fails was an outage)")
    battery: BatteryOut


class FleetAvailabilityOut(AvailabilityOut):
    p10: float | None = Field(description="the 10th-percentile device")


class FleetCompletenessOut(RatioOut):
    p10: float | None


class FleetLatencyOut(BaseModel):
    p50_median_s: float | None = Field(description="median over devices of their p50")
    p95_median_s: float | None
    method: str


class FleetOutagesOut(BaseModel):
    count: int
    open: int
    recovered: int
    down_s: float
    mttr_s: float | None
    lost: int


class FleetIncidentsOut(BaseModel):
    count: int
    open: int
    duration_s: float


class FleetBatteryOut(BaseModel):
    devices: int = Field(description="devices with a battery ratio")
    meeting_claim: int
    mean_ratio: float | None


class FleetBreakdownOut(BaseModel):
    devices: int
    availability: FleetAvailabilityOut
    completeness: FleetCompletenessOut
    deliveries: DeliveriesOut
    latency: FleetLatencyOut
    qc: QcOut
    outages: FleetOutagesOut
    quality_incidents: FleetIncidentsOut | None
    battery: FleetBatteryOut


class GateOut(BaseModel):
    name: str
    threshold: float
    value: float | None
    passed: bool


class ScoreOut(BaseModel):
    pilot_id: str
    window: WindowOut
    timezone: str
    rubric_version: str
    score: float
    verdict: Literal["eligible", "conditional", "not_eligible", "invalid"]
    fleet: dict[str, Any]
    metrics: dict[str, float | None] = Field(description="pooled ratios (scoring.fleet)")
    components: dict[str, float]
    gates: list[GateOut]
    breakdown: FleetBreakdownOut


class DeviceStatusOut(BaseModel):
    device_id: str
    kind: DeviceKind
    status: Literal["scored", "excluded", "not_started"]
    window_start: str
    window_end: str


class DeviceScoresOut(BaseModel):
    pilot_id: str
    window: WindowOut
    devices: list[DeviceStatusOut]
    metrics: list[dict[str, Any]] = Field(description="every metric of every scored device (scoring.metrics)")
    breakdown: list[DeviceBreakdownOut]
