"""What each broker account may publish and subscribe to, computed from the registry.

    device          publish   pilotlab/v1/{pilot}/{device}/+   (not …/cmd: commands come from the platform)
                    subscribe pilotlab/v1/{pilot}/{device}/cmd
    gateway         publish   pilotlab/v1/{pilot}/{gateway}/+  (batch, gateway_status) and, for every device
                              attached to it (device.gateway_id), that device's topics
                    subscribe its own and its devices' …/cmd
    ingest          subscribe pilotlab/v1/# and the LoRaWAN network-server topics, shared or not
    simulator       publish   pilotlab/v1/# (or pilotlab/v1/{pilot}/# when scoped to a pilot) and the
                              network-server uplink topics (the lab's LPWA simulator)
    network_server  publish   application/# (ChirpStack's MQTT integration into pilotlab's broker)
    api             publish   pilotlab/v1/+/+/cmd (commands to switches) and the LoRaWAN downlink topics
                              (ChirpStack application/+/device/+/command/down, TTS v3/+/devices/+/down/push)

Every account connects with its username as client id and no other (access.sync binds them).
Everything else is denied: the plugin's default is deny for publishClientSend and subscribe.
Each account has one role of its own (`pilotlab-<kind>-<username>`), except ingest and
network_server accounts, which share one role each. Roles and clients pilotlab manages are
marked with `textname` = MANAGED, so a sync never touches the admin or hand-made accounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from devices.contract import TOPIC_ROOT

MANAGED = "pilotlab"
ROLE_PREFIX = "pilotlab-"

# Network-server topics (ingest.adapters): ChirpStack v4's integration and The Things Stack v3's.
CHIRPSTACK_TOPICS = ("application/#",)
THINGS_STACK_TOPICS = ("v3/#",)


@dataclass(frozen=True, order=True)
class Acl:
    acltype: str  # publishClientSend | subscribeLiteral | subscribePattern | …
    topic: str
    allow: bool = True
    priority: int = 0

    def as_json(self) -> dict[str, object]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow, "priority": self.priority}


@dataclass(frozen=True)
class Role:
    name: str
    acls: tuple[Acl, ...]


@dataclass(frozen=True)
class Account:
    """A broker client as it should be: username and role names (the password lives in the registry)."""

    username: str
    kind: str
    roles: tuple[str, ...]

    @property
    def client_id(self) -> str:
        """The only MQTT client id the broker lets this account use (access.credentials)."""
        return self.username


@dataclass
class BrokerPlan:
    """Every managed role and client the broker should hold."""

    roles: dict[str, Role] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)


def _own_topics(pilot_id: str, device_id: str) -> list[Acl]:
    base = f"{TOPIC_ROOT}/{pilot_id}/{device_id}"
    return [Acl("publishClientSend", f"{base}/+"),
            Acl("publishClientSend", f"{base}/cmd", allow=False, priority=1),
            Acl("subscribeLiteral", f"{base}/cmd")]


def device_role(device_id: str, pilot_id: str) -> Role:
    return Role(f"{ROLE_PREFIX}device-{device_id}", tuple(sorted(_own_topics(pilot_id, device_id))))


def gateway_role(gateway_id: str, pilot_id: str, attached: list[tuple[str, str]]) -> Role:
    """`attached`: (device_id, pilot_id) of the devices whose gateway_id is this gateway."""
    acls = _own_topics(pilot_id, gateway_id)
    for device_id, device_pilot in attached:
        acls += _own_topics(device_pilot, device_id)
    return Role(f"{ROLE_PREFIX}gateway-{gateway_id}", tuple(sorted(set(acls))))


def ingest_role() -> Role:
    acls = []
    for topic in (f"{TOPIC_ROOT}/#", *CHIRPSTACK_TOPICS, *THINGS_STACK_TOPICS):
        acls += [Acl("subscribePattern", topic), Acl("subscribePattern", f"$share/+/{topic}")]
    return Role(f"{ROLE_PREFIX}ingest", tuple(sorted(acls)))


def simulator_role(pilot_id: str | None) -> Role:
    root = f"{TOPIC_ROOT}/{pilot_id}/#" if pilot_id else f"{TOPIC_ROOT}/#"
    acls = [Acl("publishClientSend", root)]
    acls += [Acl("publishClientSend", t) for t in (*CHIRPSTACK_TOPICS, *THINGS_STACK_TOPICS)]
    name = f"{ROLE_PREFIX}simulator-{pilot_id}" if pilot_id else f"{ROLE_PREFIX}simulator"
    return Role(name, tuple(sorted(acls)))


# Where the API publishes commands (api.command_sender, devices.commands).
COMMAND_TOPICS = (f"{TOPIC_ROOT}/+/+/cmd", "application/+/device/+/command/down", "v3/+/devices/+/down/push")


def api_role() -> Role:
    return Role(f"{ROLE_PREFIX}api", tuple(sorted(Acl("publishClientSend", t) for t in COMMAND_TOPICS)))


def network_server_role() -> Role:
    return Role(f"{ROLE_PREFIX}network-server", tuple(Acl("publishClientSend", t) for t in CHIRPSTACK_TOPICS))


def plan(conn: psycopg.Connection) -> BrokerPlan:
    """The broker's managed roles and clients for every active account in the registry."""
    result = BrokerPlan()
    rows = conn.execute(
        "SELECT a.username, a.kind, a.pilot_id, d.pilot_id, g.pilot_id "
        "FROM broker_account a LEFT JOIN device d ON d.id = a.device_id LEFT JOIN gateway g ON g.id = a.gateway_id "
        "WHERE a.revoked_at IS NULL ORDER BY a.username").fetchall()
    attached: dict[str, list[tuple[str, str]]] = {}
    for device_id, gateway_id, pilot_id in conn.execute(
            "SELECT id, gateway_id, pilot_id FROM device WHERE gateway_id IS NOT NULL AND decommissioned_at IS NULL"):
        attached.setdefault(gateway_id, []).append((device_id, pilot_id))
    for username, kind, scope, device_pilot, gateway_pilot in rows:
        if kind == "device":
            role = device_role(username, device_pilot)
        elif kind == "gateway":
            role = gateway_role(username, gateway_pilot, sorted(attached.get(username, [])))
        elif kind == "ingest":
            role = ingest_role()
        elif kind == "simulator":
            role = simulator_role(scope)
        elif kind == "api":
            role = api_role()
        else:
            role = network_server_role()
        result.roles[role.name] = role
        result.accounts[username] = Account(username, kind, (role.name,))
    return result
