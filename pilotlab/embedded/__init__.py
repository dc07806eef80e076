"""Embedded services for `pilotlab demo` and the test suite: PostgreSQL (pgserver) and an MQTT
broker (Mosquitto if installed, else iotcore's rumqttd), each a child process we start and stop.

    postgres.py        EmbeddedPostgres: pgserver's PostgreSQL 16 on 127.0.0.1, a free port
    broker.py          EmbeddedBroker: mosquitto with deploy/mosquitto/mosquitto.conf, or iotcore
    iotcore_broker.py  the child process that runs iotcore's broker
    lifetime.py        tying a child's life to ours, stopping it with escalation
    ports.py           free ports and waiting for a listener

Production runs its own PostgreSQL and Mosquitto (deploy/); nothing here is used by ingest or api.
"""
