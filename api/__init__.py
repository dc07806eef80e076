"""HTTP API for pilot managers and stage-advancement reviewers: registry, telemetry, health,
dead letters. `create_app(settings)` builds the app; `server.serve(settings)` runs it.

HTTP lives here; every SQL statement lives in `store`.
"""
