"""API roles and what each may do: one rule per endpoint, in one table.

    admin          everything
    pilot_manager  reads and manages its pilots (scope: the key's pilot ids)
    firm           reads its own pilots (scope: the key's firm); changes only its device profiles (and
                   switches its own switches: commands)
    reviewer       reads everything (registry, telemetry, all scores and records), changes nothing
    provisioning   registers devices and gateways and manages their broker credentials

A rule names the roles allowed and the query parameter that scopes a list for firm and
pilot_manager keys. Every id those keys send (path, query or body) is checked against their scope
(api.auth): objects outside it answer exactly like objects that do not exist (404 in a path or
query, 422 in a body), so a firm cannot learn another firm's ids or link to its objects.
Endpoints missing from `RULES` are admin-only (and the role matrix test fails until they are
listed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ApiRole(StrEnum):
    ADMIN = "admin"
    PILOT_MANAGER = "pilot_manager"
    FIRM = "firm"
    REVIEWER = "reviewer"
    PROVISIONING = "provisioning"
    DEPARTMENT = "department"  # a city department: saves requirements, sees the firms whose records meet them


SCOPED = frozenset({ApiRole.FIRM, ApiRole.PILOT_MANAGER})
A, M, F, R, P, D = (ApiRole.ADMIN, ApiRole.PILOT_MANAGER, ApiRole.FIRM, ApiRole.REVIEWER, ApiRole.PROVISIONING,
                    ApiRole.DEPARTMENT)


@dataclass(frozen=True)
class Rule:
    roles: frozenset[ApiRole]
    public: bool = False
    # the query parameter that scopes a list for firm and pilot_manager keys ("pilot_id", "firm_id")
    list_scope: str | None = None


def _rule(*roles: ApiRole, list_scope: str | None = None) -> Rule:
    return Rule(frozenset(roles), list_scope=list_scope)


PUBLIC = Rule(frozenset(ApiRole), public=True)
ADMIN_ONLY = _rule(A)
READ = _rule(A, M, F, R, P)            # registry, telemetry, health
READ_RESULTS = _rule(A, M, F, R)       # scores and records
MANAGE = _rule(A, M)                   # a pilot's own settings and records
PROVISION = _rule(A, M, P)             # devices, gateways, their links and credentials
MATCH = _rule(A, D)                    # requirements and the firms that meet them
READ_RECORD = _rule(A, M, F, R, D)     # one record: a department opens the records its matches link to
PLAN = _rule(A, D)                     # the program's rolling plan beside what its pilots achieved

RULES: dict[tuple[str, str], Rule] = {
    # service
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # firms
    ("POST", "/firms"): ADMIN_ONLY,
    ("GET", "/firms"): _rule(A, R, P),
    ("GET", "/firms/{firm_id}"): READ,
    ("PATCH", "/firms/{firm_id}"): ADMIN_ONLY,
    ("DELETE", "/firms/{firm_id}"): ADMIN_ONLY,
    # pilots
    ("POST", "/pilots"): ADMIN_ONLY,
    ("GET", "/pilots"): _rule(A, F, R, P, list_scope="firm_id"),
    ("GET", "/pilots/{pilot_id}"): READ,
    ("PATCH", "/pilots/{pilot_id}"): MANAGE,
    ("DELETE", "/pilots/{pilot_id}"): ADMIN_ONLY,
    ("GET", "/pilots/{pilot_id}/health"): READ,
    # gateways and devices
    ("POST", "/gateways"): PROVISION,
    ("GET", "/gateways"): _rule(A, M, F, R, P, list_scope="pilot_id"),
    ("GET", "/gateways/{gateway_id}"): READ,
    ("PATCH", "/gateways/{gateway_id}"): PROVISION,
    ("POST", "/gateways/{gateway_id}/decommission"): PROVISION,
    ("DELETE", "/gateways/{gateway_id}"): PROVISION,
    ("GET", "/gateways/{gateway_id}/health"): READ,
    ("POST", "/devices"): PROVISION,
    ("GET", "/devices"): _rule(A, M, F, R, P, list_scope="pilot_id"),
    ("GET", "/devices/{device_id}"): READ,
    ("PATCH", "/devices/{device_id}"): PROVISION,
    ("POST", "/devices/{device_id}/decommission"): PROVISION,
    ("DELETE", "/devices/{device_id}"): PROVISION,
    ("GET", "/devices/{device_id}/telemetry"): READ,
    ("GET", "/devices/{device_id}/health"): READ,
    # LPWA links
    ("PUT", "/devices/{device_id}/dev-eui"): PROVISION,
    ("POST", "/network-server-applications"): PROVISION,
    ("GET", "/devices/{device_id}/uplink-loss"): READ,
    ("GET", "/devices/{device_id}/receptions"): READ,
    ("GET", "/devices/{device_id}/frames"): READ,
    ("GET", "/devices/{device_id}/joins"): READ,
    ("GET", "/devices/{device_id}/lorawan"): READ,
    ("GET", "/network-server-applications"): _rule(A, M, F, R, P, list_scope="pilot_id"),
    # device profiles: a firm's own, or public (admin-made); see api.routes.profiles
    ("POST", "/device-profiles"): _rule(A, M, F, P),
    ("GET", "/device-profiles"): _rule(A, M, F, R, P, list_scope="firm_id"),
    ("GET", "/device-profiles/{profile_id}"): READ,
    ("PUT", "/device-profiles/{profile_id}"): _rule(A, M, F, P),
    ("GET", "/device-profiles/{profile_id}/versions"): READ,
    ("PUT", "/devices/{device_id}/profile"): PROVISION,
    # the MQTT contract as JSON Schema, for firmware makers
    ("GET", "/contract/v1/schema"): PUBLIC,
    ("GET", "/contract/v1/schema/{kind}/{channel}"): PUBLIC,
    # dead letters
    ("GET", "/dead-letters"): _rule(A, M, F, R, list_scope="pilot_id"),
    # scores and records
    ("GET", "/scores"): _rule(A, R),
    ("GET", "/pilots/{pilot_id}/score"): READ_RESULTS,
    ("GET", "/pilots/{pilot_id}/score/devices"): READ_RESULTS,
    ("GET", "/pilots/{pilot_id}/score/history"): READ_RESULTS,
    ("PUT", "/pilots/{pilot_id}/timezone"): MANAGE,
    ("PUT", "/devices/{device_id}/battery-claim"): MANAGE,
    ("POST", "/pilots/{pilot_id}/records"): MANAGE,
    ("GET", "/pilots/{pilot_id}/records"): READ_RESULTS,
    ("GET", "/records/public-key"): PUBLIC,
    ("GET", "/records/{record_id}"): READ_RECORD,
    ("POST", "/records/verify"): PUBLIC,
    # demand-supply matching (api.routes.matching)
    ("POST", "/requirements"): MATCH,
    ("GET", "/requirements"): MATCH,
    ("GET", "/requirements/{requirement_id}/matches"): MATCH,
    # the program's rolling plan (api.routes.plans): set by an admin, read beside what pilots achieved
    ("PUT", "/plans/{year}"): ADMIN_ONLY,
    ("GET", "/plans"): PLAN,
    ("GET", "/plans/{year}"): PLAN,
    ("GET", "/plans/{year}/csv"): PLAN,
    # the records' transparency log: hashes and sizes only (api.routes.transparency)
    ("GET", "/log/tree-head"): PUBLIC,
    ("GET", "/log/consistency"): PUBLIC,
    ("GET", "/records/{record_id}/inclusion"): PUBLIC,
    # onboarding conformance (api.routes.conformance): a firm runs and reads its own devices only
    ("POST", "/conformance/runs"): _rule(A, M, F, P),
    ("GET", "/conformance/runs/{run_id}"): READ,
    ("GET", "/conformance/reports/{report_id}"): READ,
    ("GET", "/devices/{device_id}/conformance"): READ,
    ("GET", "/pilots/{pilot_id}/conformance"): READ,
    ("PUT", "/pilots/{pilot_id}/conformance"): MANAGE,
    # commands to smart switches (api.routes.commands): a firm switches its own
    ("POST", "/devices/{device_id}/commands"): _rule(A, M, F),
    ("GET", "/devices/{device_id}/commands"): READ,
    ("GET", "/commands/{command_id}"): READ,
    # broker credentials (shown once) and API keys
    ("POST", "/devices/{device_id}/credentials"): PROVISION,
    ("GET", "/devices/{device_id}/credentials"): PROVISION,
    ("DELETE", "/devices/{device_id}/credentials"): PROVISION,
    ("POST", "/gateways/{gateway_id}/credentials"): PROVISION,
    ("GET", "/gateways/{gateway_id}/credentials"): PROVISION,
    ("DELETE", "/gateways/{gateway_id}/credentials"): PROVISION,
    ("POST", "/api-keys"): ADMIN_ONLY,
    ("GET", "/api-keys"): ADMIN_ONLY,
    ("DELETE", "/api-keys/{key_id}"): ADMIN_ONLY,
}


def rule_for(method: str, path: str) -> Rule | None:
    """The declared rule of an endpoint (HEAD follows GET); None if it declares none."""
    return RULES.get(("GET" if method == "HEAD" else method, path))


# The web pages (api.pages), mounted under /ui: a page session is made from an API key and carries its
# role and scope, so each page takes the rule of the API it shows. Public pages need no session.
PAGES: dict[tuple[str, str], Rule] = {
    ("GET", "/ui/"): PUBLIC,                         # a redirect to the overview
    ("GET", "/ui/signin"): PUBLIC,
    ("POST", "/ui/signin"): PUBLIC,
    ("GET", "/ui/signin/link/{token}"): PUBLIC,
    ("POST", "/ui/signin/link"): PUBLIC,
    ("POST", "/ui/signout"): PUBLIC,
    ("GET", "/ui/verify"): PUBLIC,                    # checks a record file in the browser, no upload
    ("GET", "/ui/pilots"): READ_RESULTS,              # overview: scores and verdicts, as GET /scores
    ("GET", "/ui/pilots/{pilot_id}"): READ_RESULTS,   # one pilot: its latest score and records
    ("GET", "/ui/records/{record_id}"): READ_RECORD,  # a record file (or its bundle), as GET /records/{id}
    ("GET", "/ui/matching"): MATCH,                   # requirements: the form and those saved
    ("POST", "/ui/matching"): MATCH,
    ("GET", "/ui/matching/{requirement_id}"): MATCH,  # one requirement's matching firms, ranked
    ("GET", "/ui/devices/{device_id}"): READ_RESULTS,  # one device: readings, arrivals, battery, dead letters
    # a device's conformance runs and reports: the rules of the API's conformance endpoints
    ("GET", "/ui/devices/{device_id}/conformance"): RULES[("GET", "/devices/{device_id}/conformance")],
    ("POST", "/ui/devices/{device_id}/conformance/runs"): RULES[("POST", "/conformance/runs")],
    ("POST", "/ui/conformance/runs/{run_id}/finish"): RULES[("GET", "/conformance/runs/{run_id}")],  # its read finishes it
    ("GET", "/ui/conformance/reports/{report_id}"): RULES[("GET", "/conformance/reports/{report_id}")],
    ("GET", "/ui/plan"): PLAN,                        # the year's plan beside what its pilots achieved
    ("GET", "/ui/plan/csv"): PLAN,
    # residents' feedback (api.pages.feedback_*): the form a QR sticker opens is public; a pilot's feedback
    # reads as its scores; its sticker sheet (and a code's rotation) is for those who put stickers up; an
    # admin moderates comments
    ("GET", "/ui/feedback/{code}"): PUBLIC,
    ("POST", "/ui/feedback/{code}"): PUBLIC,
    ("GET", "/ui/pilots/{pilot_id}/feedback"): READ_RESULTS,
    ("GET", "/ui/pilots/{pilot_id}/feedback/stickers"): _rule(A, M, F),
    ("POST", "/ui/pilots/{pilot_id}/feedback/stickers"): _rule(A, M, F),
    ("GET", "/ui/moderation"): ADMIN_ONLY,
    ("POST", "/ui/moderation/{feedback_id}"): ADMIN_ONLY,
}


def page_rule_for(method: str, path: str) -> Rule | None:
    """The declared rule of a page (HEAD follows GET); None if it declares none."""
    return PAGES.get(("GET" if method == "HEAD" else method, path))
