"""deploy/k8s checked offline: valid Kubernetes, and agreeing with the code (services, settings, topics)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from newsroom.cli import SERVICES, build_parser
from newsroom.common.admin import Layout
from newsroom.common.settings import Settings
from newsroom.common.topics import BY_NAME, ENRICHED
from tests.deploy.helpers import drain_seconds

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
# The oldest Kubernetes the manifests are meant for, and the newest schema the validator ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CRDS = {"keda.sh/v1alpha1"}  # custom resources: no schema in kubernetes-validate, checked below instead
FROM_A_SECRET = "value-from-the-secret"  # noqa: S105 - what a secretKeyRef stands for when the settings are built here

Doc = dict[str, Any]


@cache
def manifests() -> tuple[tuple[Path, Doc], ...]:
    """Every document of every YAML file under deploy/k8s (the kustomization included), with its file."""
    out: list[tuple[Path, Doc]] = []
    for path in sorted(K8S.rglob("*.yaml")):
        out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return tuple(out)


def resources() -> list[Doc]:
    """The Kubernetes objects (everything but the kustomization)."""
    return [doc for _, doc in manifests() if doc.get("kind") != "Kustomization"]


def of_kind(kind: str) -> list[Doc]:
    return [doc for doc in resources() if doc["kind"] == kind]


def named(kind: str, name: str) -> Doc:
    (doc,) = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    return doc


def config_data() -> dict[str, str]:
    data: dict[str, str] = named("ConfigMap", "newsroom-config")["data"]
    return data


def pod_specs() -> Iterator[tuple[str, Doc]]:
    """Each Deployment's and Job's pod spec, by the object's name."""
    for doc in of_kind("Deployment") + of_kind("Job"):
        yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def service_of(deployment: Doc) -> str:
    """The newsroom service a Deployment runs: the argument of its container's `newsroom run`."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[:1] == ["run"], f"{deployment['metadata']['name']}: runs {args}, not `newsroom run SERVICE`"
    return str(args[1])


def deployment_of(service: str) -> Doc:
    (doc,) = [doc for doc in of_kind("Deployment") if service_of(doc) == service]
    return doc


def container_env(container: Doc) -> dict[str, str]:
    """The environment a container gets: its ConfigMaps (from these files), then its own variables."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"{container['name']}: only ConfigMaps are read whole"
        env.update(named("ConfigMap", source["configMapRef"]["name"])["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            assert "secretKeyRef" in var["valueFrom"], f"{container['name']}: {var['name']} from where?"
            env[var["name"]] = FROM_A_SECRET
    return env


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process would read from exactly ``env`` (nothing of this process's own environment)."""
    import os

    for key in list(os.environ):
        if key.startswith("NEWSROOM_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def container_port(container: Doc, port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(found)


@cache
def subscriptions(service: str) -> frozenset[tuple[str, str]]:
    """(consumer group, topic) of each of a service's grouped subscribers, read from the broker its code
    builds (its parts from ``build``, else a module-level ``broker``, else the app ``create_app`` makes),
    built and never started."""
    module = importlib.import_module(f"newsroom.{service}.service")
    if hasattr(module, "build"):
        broker = module.build(Settings()).broker
    elif hasattr(module, "broker"):
        broker = module.broker
    else:
        broker = getattr(module.create_app(Settings()), "broker", None)
    if broker is None:  # web reads Redis only
        return frozenset()
    return frozenset(
        (sub.group_id, topic.name) for sub in broker.subscribers if sub.group_id for topic in sub.topics
    )


def quantity(value: str | int) -> float:
    """A Kubernetes quantity as a number (cores, bytes), for the suffixes used here."""
    text = str(value)
    for suffix, scale in (("m", 1e-3), ("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30)):
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * scale
    return float(text)


def test_every_manifest_parses_and_is_valid_kubernetes() -> None:
    """Every object under deploy/k8s validates, strictly (no unknown field), against the Kubernetes schema."""
    docs = resources()
    assert {doc["kind"] for doc in docs} >= {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Job",
    }
    for doc in docs:
        if doc["apiVersion"] in CRDS:
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} (Kubernetes {version}): {exc.message}")


# The ScaledObject fields used here (keda.sh/v1alpha1; see KEDA's ScaledObject and Kafka scaler docs).
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "minReplicaCount", "maxReplicaCount", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"const": "Deployment"},
                        "apiVersion": {"const": "apps/v1"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 1},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"const": "kafka"},
                            "metadata": {
                                "type": "object",
                                "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                                "additionalProperties": False,
                                "properties": {
                                    "bootstrapServers": {"type": "string"},
                                    "consumerGroup": {"type": "string"},
                                    "topic": {"type": "string"},
                                    "lagThreshold": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                                    "offsetResetPolicy": {"enum": ["earliest", "latest"]},
                                    "allowIdleConsumers": {"enum": ["true", "false"]},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_scaled_objects_have_keda_fields() -> None:
    """Each ScaledObject has only known KEDA fields with string metadata, and scales a Deployment here."""
    scaled = of_kind("ScaledObject")
    assert scaled
    deployments = {doc["metadata"]["name"] for doc in of_kind("Deployment")}
    for doc in scaled:
        jsonschema.validate(doc, SCALED_OBJECT)
        assert doc["spec"]["scaleTargetRef"]["name"] in deployments
        assert doc["spec"]["minReplicaCount"] <= doc["spec"]["maxReplicaCount"]


def test_kustomization_lists_every_manifest_but_the_jobs() -> None:
    """`kubectl apply -k deploy/k8s` applies every top-level file; the Jobs (run on demand) are not in it."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files
    assert {p.parent.name for p in K8S.rglob("*.yaml") if p.parent != K8S} == {"jobs"}
    assert {doc["kind"] for path, doc in manifests() if path.parent.name == "jobs"} == {"Job"}


def test_one_deployment_per_service_running_it_from_the_one_image() -> None:
    """There is one Deployment per newsroom service, running `newsroom run SERVICE` from one image."""
    assert sorted(service_of(doc) for doc in of_kind("Deployment")) == sorted(SERVICES)
    images = set()
    for name, spec in pod_specs():
        for container in spec["containers"]:
            images.add(container["image"])
            assert "command" not in container, f"{name}: the image's entry point is `newsroom`"
            build_parser().parse_args(container["args"])  # a real command line of `newsroom`
    assert len(images) == 1
    (image,) = images
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert image.split(":")[0] in {entry["name"] for entry in kustomization["images"]}


def test_probes_ask_health_on_the_port_of_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Readiness asks /readyz, liveness and start-up /healthz, on the port the pod's settings give it."""
    for service in SERVICES:
        (container,) = deployment_of(service)["spec"]["template"]["spec"]["containers"]
        port = settings_from(container_env(container), monkeypatch).port_of(service)
        assert [p["containerPort"] for p in container["ports"]] == [port], service
        for probe, path in (
            ("readinessProbe", "/readyz"),
            ("livenessProbe", "/healthz"),
            ("startupProbe", "/healthz"),
        ):
            check = container[probe]["httpGet"]
            assert check["path"] == path, f"{service} {probe}"
            assert container_port(container, check["port"]) == port, f"{service} {probe}"
        annotations = deployment_of(service)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)


def test_newsroom_variables_are_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every NEWSROOM_ variable in the ConfigMap and the pods is a Settings field, and each pod's parse."""
    fields = {f"NEWSROOM_{name.upper()}" for name in Settings.model_fields}
    for key in config_data():
        assert key in fields, f"ConfigMap: {key} is not a setting"
    for name, spec in pod_specs():
        for container in spec["containers"]:
            for var in container.get("env", []):
                assert var["name"] in fields, f"{name}: {var['name']} is not a setting"
            settings_from(container_env(container), monkeypatch)  # valid values, or ValidationError


def test_no_secret_is_written_in_the_files() -> None:
    """No Secret object or key value is in deploy/k8s; every pod takes the API keys from a secretKeyRef."""
    assert not of_kind("Secret")
    assert not any(key.endswith("API_KEYS") for key in config_data())
    for name, spec in pod_specs():
        for container in spec["containers"]:
            (keys,) = [var for var in container["env"] if var["name"] == "NEWSROOM_API_KEYS"]
            assert "value" not in keys, f"{name}: API keys written in the file"
            assert keys["valueFrom"]["secretKeyRef"]["name"] == "newsroom-secrets", name


def test_topics_are_durable_on_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigMap asks for three replicas, min ISR 2 and the idempotent producer on the cluster."""
    settings = settings_from(config_data() | {"NEWSROOM_API_KEYS": FROM_A_SECRET}, monkeypatch)
    layout = Layout.for_cluster(settings, brokers=3)
    assert (layout.replication, layout.min_insync) == (3, 2)
    assert settings.kafka_idempotence == "true"


def test_scaled_objects_follow_the_consumer_groups_and_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ScaledObject watches a group and topic its service consumes, and stays within the partitions."""
    settings = settings_from(config_data() | {"NEWSROOM_API_KEYS": FROM_A_SECRET}, monkeypatch)
    layout = Layout.for_cluster(settings, brokers=3)
    scaled_services = set()
    for doc in of_kind("ScaledObject"):
        target = named("Deployment", doc["spec"]["scaleTargetRef"]["name"])
        service = service_of(target)
        scaled_services.add(service)
        assert "replicas" not in target["spec"], f"{service}: replicas are KEDA's to set"
        for trigger in doc["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert (meta["consumerGroup"], meta["topic"]) in subscriptions(service), f"{service}: {meta}"
            partitions = layout.partitions_of(BY_NAME[meta["topic"]])
            assert doc["spec"]["maxReplicaCount"] <= partitions, (
                f"{service}: more replicas than {meta['topic']}"
            )
            assert meta["bootstrapServers"] == settings.broker_url
            assert meta.get("allowIdleConsumers", "false") == "false"
    # ingestion's one group (ingestion-registry) only projects its registry: it scales on requests, not lag
    assert scaled_services == {service for service in SERVICES if subscriptions(service)} - {"ingestion"}


def test_fixed_replicas_leave_one_up_in_a_disruption() -> None:
    """A Deployment KEDA does not scale runs at least two replicas, so its budget keeps one serving."""
    scaled = {doc["spec"]["scaleTargetRef"]["name"] for doc in of_kind("ScaledObject")}
    for doc in of_kind("Deployment"):
        if doc["metadata"]["name"] not in scaled:
            assert doc["spec"]["replicas"] >= 2, doc["metadata"]["name"]
    for doc in of_kind("ScaledObject"):
        assert doc["spec"]["minReplicaCount"] >= 2, doc["metadata"]["name"]


def test_termination_grace_covers_the_sigterm_drain() -> None:
    """Each pod's grace period is at least its preStop pause plus the drain uvicorn and the broker take."""
    drain = drain_seconds()
    assert drain >= 25  # 10 s uvicorn + 15 s broker when this was written
    for doc in of_kind("Deployment"):
        spec = doc["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep", "the pause lets endpoints drop the pod before SIGTERM"
        pause = float(command[1])
        assert pause >= 1
        assert spec["terminationGracePeriodSeconds"] >= pause + drain, doc["metadata"]["name"]
    for doc in of_kind("Job"):
        assert doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= drain


def test_every_deployment_has_a_budget_and_resources() -> None:
    """Each Deployment has a PodDisruptionBudget selecting its pods, and requests within its limits."""
    budgets = of_kind("PodDisruptionBudget")
    for doc in of_kind("Deployment"):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, doc["metadata"]["name"]
        assert matching[0]["spec"].get("maxUnavailable") == 1
    for name, spec in pod_specs():
        for container in spec["containers"]:
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            for resource in ("cpu", "memory"):
                assert 0 < quantity(requests[resource]) <= quantity(limits[resource]), f"{name} {resource}"


def test_web_and_ingestion_are_services_on_their_ports() -> None:
    """Services front exactly web and ingestion, selecting their pods and reaching their HTTP port."""
    fronted = set()
    for doc in of_kind("Service"):
        (target,) = [
            d
            for d in of_kind("Deployment")
            if doc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        (container,) = target["spec"]["template"]["spec"]["containers"]
        for port in doc["spec"]["ports"]:
            assert container_port(container, port["targetPort"]) == container["ports"][0]["containerPort"]
        fronted.add(service_of(target))
    assert fronted == {"web", "ingestion"}


def test_jobs_create_topics_and_rebuild_fragments() -> None:
    """The Jobs run `newsroom topics --create` and `newsroom rebuild fragments`, once, never restarted."""
    commands = {}
    for doc in of_kind("Job"):
        spec = doc["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        (container,) = spec["containers"]
        args = build_parser().parse_args(container["args"])
        commands[doc["metadata"]["name"]] = args
    by_command = {
        (args.command, getattr(args, "rebuild_command", None), getattr(args, "create", None))
        for args in commands.values()
    }
    assert ("topics", None, True) in by_command
    assert ("rebuild", "fragments", None) in by_command
    assert not any(getattr(args, "dry_run", False) for args in commands.values())


def test_the_rebuild_job_waits_for_as_many_members_as_the_members_job_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rebuild runs as a group whose --members counts itself and every pod of the members Job."""
    jobs = {doc["metadata"]["name"]: doc for doc in of_kind("Job")}

    def args_of(job: dict[str, Any]) -> Any:
        return build_parser().parse_args(job["spec"]["template"]["spec"]["containers"][0]["args"])

    rebuild, members = jobs["newsroom-rebuild-fragments"], jobs["newsroom-rebuild-members"]
    settings = settings_from(config_data() | {"NEWSROOM_API_KEYS": FROM_A_SECRET}, monkeypatch)
    rebuild, joiner = args_of(rebuild), args_of(members)
    assert rebuild.group
    assert joiner.join == ""  # the rebuild in progress, whichever namespace it builds
    assert rebuild.members == members["spec"]["parallelism"] + 1
    assert members["spec"]["parallelism"] <= Layout.for_cluster(settings, 3).partitions_of(ENRICHED)
