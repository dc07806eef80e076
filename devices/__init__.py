"""What a device is and what it says: kinds, telemetry models with physical ranges, the MQTT contract.

This package depends on nothing of pilotlab's but the error hierarchy.
"""
