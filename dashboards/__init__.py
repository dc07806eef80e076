"""Grafana dashboards as code: specs and SQL (catalog), JSON via grafana-foundation-sdk (model),
Grafana's SQL expansion for tests (grafana_sql), and provisioning (provision, files)."""
