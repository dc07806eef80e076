"""Pilot scoring: per-device metrics in SQL, fleet verdict from a versioned rubric, signed records.

    rubric.py     the versioned YAML rubric and its validation (rubrics/v3.yaml; v1 and v2 still load)
    window.py     which devices are scored, over which window
    declared.py   what each device's profile declares: complete readings, QC-tested metrics, battery
    quality.py    QARTOD flags per reading as SQL (held to ioos_qc.qartod in the tests)
    delivery.py   what each reading counts for: delivery, data quality, latency, values
    metrics.py    per-device metrics and their formulas (and the reference raw pass)
    daily.py      per-device per-day summaries (rollups) and merging them into metrics
    incidents.py  quality incidents: runs of QC fails, joined across day summaries
    ingest_counts.py  duplicates dropped and messages rejected at ingest, per device window
    breakdown.py  what each figure is made of, per device and for the fleet (API, CLI, records)
    histogram.py  log-bucket histograms for mergeable latency / accuracy percentiles (1 %)
    latency.py    exact latency percentiles from the raw rows, for signed records
    lpwa.py       LPWA packet delivery ratio when the loss table exists
    residents.py  residents' satisfaction from their feedback (rubric v3)
    fleet.py      pooled ratios, p10 device, gates, score and verdict
    evidence.py   daily counts in the pilot's time zone and the evidence digest
    signing.py    Ed25519 keys
    records.py    RFC 8785 canonical, signed reference records and their verification
    issuing.py    issuing and fetching stored records
    scorer.py     score_pilot, record body, score history
    schedule.py   daily rescoring
"""
