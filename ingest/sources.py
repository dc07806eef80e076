"""Which MQTT sources a worker has, from the settings: the contract's subscription, and one per
network-server source (`Settings.network_server_sources()`), all of them `MqttSource`s feeding
the worker's one hand-off.

- The contract: the worker's stable client id, a shared subscription of the share group to
  `pilotlab/v1/+/+/+` at QoS 1, a persistent session.
- A network server on pilotlab's own broker (url unset; ChirpStack): MQTT 5, QoS 1, a shared
  subscription and a persistent session under `<client id>-<source name>`, acked after the commit
  like contract messages; it logs in as that client id with the worker's secret, as pilotlab's
  broker binds each account to one client id (access.credentials).
- A network server's own MQTT server (The Things Stack: MQTT 3.1.1, QoS 0 only): its url, its
  credentials, no session.
"""

from __future__ import annotations

import time

from devices.contract import subscription_filter
from ingest.adapters import NETWORK_SERVERS
from ingest.handoff import HandOff
from ingest.mqtt_source import MqttSource, SourceConfig
from pilotlab.errors import ServiceUnavailable
from pilotlab.settings import MqttEndpoint, NetworkServerSource, Settings


def contract_source(settings: Settings, handoff: HandOff) -> MqttSource:
    endpoint = settings.mqtt
    secret = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    return MqttSource(SourceConfig(
        endpoint, settings.ingest_client_id, (subscription_filter(),),
        session_expiry_s=settings.session_expiry_s, receive_maximum=settings.receive_maximum,
        share_group=settings.share_group,
        username=settings.mqtt_username or endpoint.username, password=secret or endpoint.password,
    ), handoff, clock=time.time)


def network_server_source(settings: Settings, config: NetworkServerSource, index: int, handoff: HandOff) -> MqttSource:
    if config.url is None and settings.mqtt_url is None:
        raise ServiceUnavailable(f"LPWA source {config.name!r} names no broker and none is configured")
    endpoint = MqttEndpoint(config.url) if config.url else settings.mqtt
    client_id = f"{settings.ingest_client_id}-{config.name}"
    worker_secret = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    user, secret = config.username, config.password.get_secret_value() if config.password else None
    if user is None and config.url is None and worker_secret is not None:
        user, secret = client_id, worker_secret  # pilotlab's broker: the account bound to this client id
    elif user is None:
        user, secret = endpoint.username, endpoint.password
    # A share name of its own per source: rumqttd (the iotcore fallback) keys shared groups by
    # name alone and round-robins a message to members whose filter does not match, which then
    # never see it (measured: 1 of 10 delivered when two filters shared one name).
    return MqttSource(SourceConfig(
        endpoint, client_id, config.topics or NETWORK_SERVERS[config.network_server].default_topics,
        session_expiry_s=settings.session_expiry_s, receive_maximum=settings.receive_maximum,
        share_group=f"{settings.share_group}-{config.name}" if config.shared else None,
        protocol=config.protocol, qos=config.qos, username=user, password=secret,
        name=f"LPWA source {config.name}", connection_base=(index + 1) << 32,
    ), handoff, clock=time.time)
