"""Onboarding conformance (issue 17): a firm's device checked against the MQTT contract and its own
device profile before a pilot starts, over the real ingest path, into a signed, logged report.

    thresholds     the conformance profile: a versioned YAML file of thresholds (profiles/v1.yaml)
    observations   what ingest stored of a device during a run (readings, dead letters, QoS 0,
                   LoRaWAN frames and joins, its broker account)
    checks         pass / fail / not applicable per check, with evidence and what to fix
    report         the report in the records' form: canonical JSON signed with Ed25519, verified offline
    runs           runs and reports in the database, the pilot's requirement of a passed report

The device publishes as it will in the pilot; a pilot's scoring window starts at the pilot's start
(or a device's commissioning plus burn-in, scoring.window), so readings of a run before the pilot
never count in its score. README, *Conformance*, is the firm's guide.
"""
