"""docker/compose.yaml is a valid Compose file, and its monitoring fits tidecast: Prometheus scrapes each service
that serves metrics where it serves them, Grafana reads that Prometheus and loads the dashboard, the dashboard
asks for every metric docs/operations.md lists and for no other, and the image runs as a non-root user.

No Docker engine runs here, so these tests read the files. The Compose Specification's JSON Schema is the one
check-jsonschema ships (its ``vendor.compose-spec``, taken from github.com/compose-spec/compose-spec
``schema/compose-spec.json``, with the upstream's licence), so it is not copied into this repository.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "tidecast.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def test_the_compose_file_is_valid_under_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_refuses_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["forecast"]["depend_on"] = broken["services"]["forecast"].pop("depends_on")
    assert any("depend_on" in error for error in schema_errors(broken))


def metrics_ports(compose: dict[str, Any]) -> dict[str, int]:
    """Service -> the port its ``tidecast ... --metrics-port`` serves on (every interface of the container)."""
    found = {}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if "--metrics-port" in command:
            assert command[command.index("--metrics-host") + 1] == "0.0.0.0", f"{name}: Prometheus could not reach it"
            found[name] = int(command[command.index("--metrics-port") + 1])
    return found


def test_two_ingest_workers_and_the_forecaster_serve_metrics(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["ingest"]["command"][0] == "ingest" and services["ingest"]["deploy"]["replicas"] == 2
    assert services["forecast"]["command"][0] == "forecast"
    assert set(metrics_ports(compose)) == {"ingest", "forecast"}


def test_prometheus_scrapes_every_service_that_serves_metrics(compose: dict[str, Any]) -> None:
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in compose["services"]["prometheus"]["volumes"]
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    targets = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets |= {(host, int(port)) for host, port in (t.rsplit(":", 1) for t in static["targets"])}
        for dns in job.get("dns_sd_configs", []):  # every replica of a scaled service
            targets |= {(name, int(dns["port"])) for name in dns["names"]}
    assert targets == set(metrics_ports(compose).items())


def test_grafana_reads_that_prometheus_and_loads_the_dashboard(compose: dict[str, Any]) -> None:
    provisioning = DOCKER / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in compose["services"]["prometheus"]["ports"]
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    provider = yaml.safe_load((provisioning / "dashboards" / "tidecast.yml").read_text())["providers"][0]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    uids = {target["datasource"]["uid"] for panel in json.loads(DASHBOARD.read_text())["panels"]
            for target in panel["targets"]}
    assert uids == {source["uid"]}


def documented() -> set[str]:
    section = OPERATIONS.read_text().split("\n## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(tidecast_[a-z0-9_]+)`", section, re.M))


def test_the_dashboard_shows_every_exported_metric_and_no_other() -> None:
    asked = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            asked |= {re.sub(r"_(bucket|sum|count)$", "", name) for name in re.findall(r"tidecast_[a-z0-9_]+",
                                                                                        target["expr"])}
    assert asked == documented()


def test_the_image_runs_as_a_non_root_user_with_the_cpu_build_of_torch() -> None:
    lines = (DOCKER / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any("download.pytorch.org/whl/cpu torch==2.13.0" in line for line in lines)
