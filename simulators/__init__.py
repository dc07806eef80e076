"""Simulated fleets that speak the real MQTT contract (devices.contract, devices.telemetry).

    firmware.py     what every simulated device does: its clock, seq counter, status reports
    switch.py       smart switch behaviour          tracker.py      location tracker on a route
    environment.py  environment sensor behaviour    device.py       registered devices → behaviours
    publisher.py    the paho v5 client they share   fleet.py        a fleet publishing in real time
    burst.py        bulk streams for tests/benches  seed.py         the demo firm, pilot and devices

Behaviours are pure and deterministic given a seed and the times they are ticked at; only
publisher.py, fleet.py, burst.py and seed.py do I/O.
"""
