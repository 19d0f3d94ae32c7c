"""The deployment files parse and say what operators rely on: every long-running container has
liveness and readiness probes on the service's own endpoints, resource requests and limits,
and its settings from the ConfigMap/Secret; compose runs the full system on PostgreSQL."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
PORTS = {"ingest": 8001, "query": 8002, "reconcile": 8003}


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Deployment"}


def test_every_manifest_parses_and_the_kustomization_lists_them_all() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    for doc in _documents():
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


def test_each_service_is_a_deployment_running_its_serve_command() -> None:
    deployments = _deployments()
    assert set(deployments) == set(PORTS)
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"][:3] == ["claimledger", "serve", name]
        assert container["ports"][0]["containerPort"] == PORTS[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_every_container_has_liveness_and_readiness_probes_and_resources() -> None:
    for name, deployment in _deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"claimledger"}, name


def test_the_environment_names_the_database_redis_and_partitions() -> None:
    data: dict[str, str] = {}
    for doc in _documents():
        if doc["kind"] in ("ConfigMap", "Secret"):
            data |= doc.get("data") or doc.get("stringData") or {}
    for variable in (
        "CLAIMLEDGER_DATABASE_URL",
        "CLAIMLEDGER_REDIS_URL",
        "CLAIMLEDGER_PARTITIONS",
        "CLAIMLEDGER_BOOTSTRAP_WRITE_KEY",
    ):
        assert variable in data
    assert data["CLAIMLEDGER_DATABASE_URL"].startswith("postgresql://")


def test_services_select_their_deployments_pods() -> None:
    deployments = _deployments()
    services = [d for d in _documents() if d["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} == set(PORTS)
    for service in services:
        pod_labels = deployments[service["metadata"]["name"]]["spec"]["template"]["metadata"][
            "labels"
        ]
        assert service["spec"]["selector"].items() <= pod_labels.items()


def test_compose_runs_postgres_redis_ingest_query_and_two_reconcilers_with_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "ingest", "query", "reconcile"}
    assert services["reconcile"]["deploy"]["replicas"] == 2
    for name in ("ingest", "query", "reconcile"):
        service = services[name]
        assert service["command"][:3] == ["claimledger", "serve", name]
        assert service["environment"]["CLAIMLEDGER_DATABASE_URL"].startswith("postgresql://")
        assert service["depends_on"] == {
            "redis": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
        }
        assert f":{PORTS[name]}/readyz" in " ".join(service["healthcheck"]["test"])
    for name in ("redis", "postgres"):
        assert services[name]["healthcheck"]["test"]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] == kind]


def test_a_deployment_an_hpa_scales_leaves_its_replica_count_to_the_hpa() -> None:
    deployments = _deployments()
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in _of_kind("HorizontalPodAutoscaler")}
    assert scaled == {"ingest", "query"}
    for name in scaled:
        assert "replicas" not in deployments[name]["spec"], name  # each apply would reset it
    # the reconcilers scale by hand (stream lag, partitions), so they keep a fixed count
    assert deployments["reconcile"]["spec"]["replicas"] >= 2


def test_the_ingress_reaches_query_and_ingest_by_host_and_keeps_streams_unbuffered() -> None:
    (ingress,) = _of_kind("Ingress")
    services = {s["metadata"]["name"]: s for s in _of_kind("Service")}
    backends: dict[str, str] = {}
    for rule in ingress["spec"]["rules"]:
        (path,) = rule["http"]["paths"]
        assert (path["path"], path["pathType"]) == ("/", "Prefix")
        target = path["backend"]["service"]
        port_names = {p["name"] for p in services[target["name"]]["spec"]["ports"]}
        assert target["port"]["name"] in port_names
        backends[rule["host"]] = target["name"]
    # one host each: both serve paths under /v1/reports, which a path rule cannot split
    assert sorted(backends.values()) == ["ingest", "query"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"  # SSE
    hosts = {h for t in ingress["spec"]["tls"] for h in t["hosts"]}
    assert hosts == set(backends)


def test_the_services_believe_forwarded_addresses_from_the_proxy_only() -> None:
    (config,) = _of_kind("ConfigMap")
    trusted = config["data"]["CLAIMLEDGER_FORWARDED_ALLOW_IPS"]
    entries = [e.strip() for e in trusted.split(",")]
    assert "*" not in entries  # a forged X-Forwarded-For would escape the per-client limits
    for entry in entries:
        ipaddress.ip_network(entry)  # an address or a CIDR uvicorn understands


def test_every_variable_the_deployment_sets_is_documented() -> None:
    operating = (ROOT / "docs" / "operating.md").read_text()
    for doc in _of_kind("ConfigMap") + _of_kind("Secret"):
        for variable in doc.get("data") or doc.get("stringData") or {}:
            assert f"| `{variable}` |" in operating, variable
