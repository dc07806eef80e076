"""deploy/compose.yaml parses, runs the whole stack, and names only images that exist.

There is no Docker engine or registry access here, so image existence is checked against
PINNED_IMAGES: each tag below was chosen from the image's published tags and is one that public
deployments pull today (see the report of issue 5); bumping an image means updating this list
after checking the registry. Everything else is checked for real: the YAML, the services, the
files it mounts, the variables it needs, Prometheus' targets and Grafana's provisioning files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

# image → why this tag (all multi-arch, amd64 and arm64).
PINNED_IMAGES = {
    "timescale/timescaledb:2.17.2-pg16": "TimescaleDB 2.17.2 on PostgreSQL 16 (Docker Hub timescale/timescaledb)",
    "pilotlab-mosquitto:2.1.2": "built from deploy/mosquitto/Dockerfile: Mosquitto 2.1.2 + persist-sqlite by "
                                "scripts/build-mosquitto.sh (FROM debian:bookworm-slim)",
    "grafana/grafana-oss:11.3.1": "Grafana OSS 11.3.1: grafana-postgresql-datasource plugin id, file provisioning v1",
    "prom/prometheus:v2.55.1": "Prometheus 2.55.1, last 2.x (config syntax below is 2.x and 3.x compatible)",
    "pilotlab:${PILOTLAB_VERSION:-local}": "built from deploy/Dockerfile (FROM python:3.11-slim-bookworm)",
}
DOCKERFILE_BASES = {"python:3.11-slim-bookworm", "debian:bookworm-slim"}
DOCKERFILES = [DEPLOY / "Dockerfile", DEPLOY / "mosquitto" / "Dockerfile"]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_compose_parses_and_runs_the_whole_stack() -> None:
    services = _compose()["services"]
    assert {"timescaledb", "mosquitto", "migrate", "api", "grafana", "prometheus"} <= set(services)
    ingest = {name: s for name, s in services.items() if s.get("command") == ["ingest"]}
    assert len(ingest) >= 2, "several ingest workers"
    ids = [s["environment"]["PILOTLAB_WORKER_ID"] for s in ingest.values()]
    assert len(set(ids)) == len(ids), "stable, distinct worker ids"
    assert all(s["env_file"] == ".env" for s in ingest.values()), "one share group for all (from .env)"
    assert services["migrate"]["command"] == ["db", "migrate"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_names_only_pinned_images_that_exist() -> None:
    images = {s["image"] for s in _compose()["services"].values()}
    assert images <= set(PINNED_IMAGES), f"unpinned images: {images - set(PINNED_IMAGES)}"
    for dockerfile in DOCKERFILES:
        bases = set(re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M))
        assert bases <= DOCKERFILE_BASES, dockerfile


def test_every_mounted_file_exists_and_mosquitto_gets_the_shipped_config() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    mosquitto = services["mosquitto"]["volumes"]
    assert "./mosquitto/mosquitto.conf:/mosquitto/config/conf.d/pilotlab.conf:ro" in mosquitto
    assert "./mosquitto/persistence-sqlite.conf:/mosquitto/config/conf.d/persistence.conf:ro" in mosquitto
    main = (DEPLOY / "compose" / "mosquitto.conf").read_text()
    assert "include_dir /mosquitto/config/conf.d" in main


def test_the_broker_image_is_built_by_the_tested_recipe_with_the_plugin_where_the_config_loads_it() -> None:
    broker = _compose()["services"]["mosquitto"]
    assert broker["build"] == {"context": "..", "dockerfile": "deploy/mosquitto/Dockerfile"}
    dockerfile = (DEPLOY / "mosquitto" / "Dockerfile").read_text()
    prefix = re.search(r"^RUN .*build-mosquitto\.sh (\S+)$", dockerfile, re.M)
    assert prefix, "the image runs scripts/build-mosquitto.sh with a prefix"
    plugin = next(line.split()[1] for line in (DEPLOY / "mosquitto" / "persistence-sqlite.conf").read_text().splitlines()
                  if line.startswith("plugin "))
    assert plugin == f"{prefix[1]}/lib/mosquitto_persist_sqlite.so"
    assert f"COPY --from=build {prefix[1]}/sbin/mosquitto " in dockerfile and plugin in dockerfile


def test_every_variable_the_stack_needs_is_in_the_example_env_file() -> None:
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    needed = set(re.findall(r"\$\{(\w+)(?::\?[^}]*)?\}", (DEPLOY / "compose.yaml").read_text())) - {"PILOTLAB_VERSION"}
    assert needed <= set(example), f"missing in .env.example: {needed - set(example)}"
    assert example["PILOTLAB_METRICS_PORT"] != "0"
    assert f":{example['POSTGRES_PASSWORD']}@" in example["PILOTLAB_DATABASE_URL"]


def test_prometheus_scrapes_every_ingest_worker_and_the_api() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    services = _compose()["services"]
    metrics_port = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
                        if line and not line.startswith("#"))["PILOTLAB_METRICS_PORT"]
    for name, service in services.items():
        if service.get("command") == ["ingest"]:
            assert f"{name}:{metrics_port}" in targets
    assert "api:8000" in targets


def test_grafana_file_provisioning_points_at_the_exported_dashboards() -> None:
    datasources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "pilotlab.yaml").read_text())
    postgres = next(d for d in datasources["datasources"] if d["uid"] == "pilotlab-postgres")
    assert postgres["type"] == "grafana-postgresql-datasource" and postgres["jsonData"]["timescaledb"] is True
    providers = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "pilotlab.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    grafana = _compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in grafana
    assert sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
