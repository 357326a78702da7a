"""The container files, checked offline (compose agrees with the code); the native builds in use."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsroom.cli import SERVICES
from newsroom.common.settings import Settings
from tests.deploy.helpers import drain_seconds
from tests.native_builds import REQUIRED, compiled

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


KAFKA3 = "docker-compose.kafka3.yml"


def merged(override: str) -> dict[str, Any]:
    """docker-compose.yml with ``override`` on top, as `docker compose -f … -f …` merges them here: the
    override's mappings (environment, depends_on) merged key by key into the base's, new services added."""
    base = compose()
    extra: dict[str, Any] = yaml.safe_load((REPO / override).read_text())

    def merge(under: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
        out = dict(under)
        for key, value in over.items():
            if key in under and isinstance(value, dict) and isinstance(under[key], dict):
                out[key] = merge(under[key], value, f"{where}.{key}")
            else:
                # compose appends sequences (ports, volumes) where this replaces them: none is overridden
                assert key not in under or not isinstance(value, list), f"{override}: {where}.{key} is a list"
                out[key] = value
        return out

    return merge(base, {k: v for k, v in extra.items() if not k.startswith("x-")}, "")


def kafka_brokers(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services that run Apache Kafka, by name."""
    return {
        name: svc
        for name, svc in data["services"].items()
        if svc.get("image", "").startswith("apache/kafka:")
    }


def settings_from(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a service reads from exactly the environment compose gives it."""
    import os

    for key in list(os.environ):
        if key.startswith("NEWSROOM_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("NEWSROOM_"):
            monkeypatch.setenv(key, "compose-test-key" if str(value).startswith("${") else str(value))
    return Settings()


def test_every_service_runs_from_the_one_image() -> None:
    """Each newsroom service has a compose entry running `newsroom run <service>` from deploy/Dockerfile."""
    services = compose()["services"]
    for name in SERVICES:
        svc = services[name]
        assert svc["command"] == ["run", name]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (REPO / svc["build"]["dockerfile"]).is_file()


@pytest.mark.parametrize("override", [None, KAFKA3])
def test_environment_names_are_real_settings(override: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every NEWSROOM_ variable in compose (and its override) is a valid Settings field; no secret in it."""
    fields = {f"NEWSROOM_{name.upper()}" for name in Settings.model_fields}
    for name, svc in (merged(override) if override else compose())["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if key.startswith("NEWSROOM_"):
                assert key in fields, f"{name}: {key} is not a setting"
            if key == "NEWSROOM_API_KEYS":
                assert str(value).startswith("${"), "API keys come from the environment"
        if name in SERVICES:
            settings_from(svc["environment"], monkeypatch)  # valid values, or ValidationError


def test_ports_and_healthchecks_match_settings() -> None:
    """Each service's healthcheck probes /readyz on the port its environment gives it."""
    for name in SERVICES:
        svc = compose()["services"][name]
        env = svc["environment"]
        port_var = "NEWSROOM_API_PORT" if name == "ingestion" else f"NEWSROOM_{name.upper()}_PORT"
        assert f"127.0.0.1:{env[port_var]}/readyz" in " ".join(svc["healthcheck"]["test"])


def test_kafka_is_kraft_and_services_wait_for_health() -> None:
    """Kafka runs in KRaft mode from the official image; services start once Kafka and Redis are healthy."""
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    for name in SERVICES:
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("override", [None, KAFKA3])
def test_kafka_keeps_its_log_on_a_volume_and_restarts(override: str | None) -> None:
    """Each broker writes its log (KAFKA_LOG_DIRS) to a named volume of its own; Kafka and Redis restart."""
    data = merged(override) if override else compose()
    sources = []
    for name, broker in kafka_brokers(data).items():
        mounts = dict(volume.split(":")[::-1] for volume in broker["volumes"])  # target -> source
        source = mounts.get(broker["environment"]["KAFKA_LOG_DIRS"])
        assert source in data["volumes"], f"{name}: its log is not on a named volume"
        sources.append(source)
    assert len(sources) == len(set(sources)), "each broker has a volume of its own"
    for name in [*kafka_brokers(data), "redis"]:
        assert data["services"][name]["restart"] in {"always", "unless-stopped"}, name


def test_services_scale_behind_the_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """No service has a container name or host port (so --scale works); edge balances web and the API."""
    import re

    services = compose()["services"]
    for name in SERVICES:
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], f"{name}: a host port clashes at --scale"
    edge = services["edge"]
    (config,) = edge["configs"]
    text = compose()["configs"][config["source"]]["content"]
    assert config["target"].startswith("/etc/nginx/conf.d/")
    assert "$" not in text, "compose would interpolate it"
    upstreams = dict(re.findall(r"server (\w+):(\d+) resolve;", text))
    listens = re.findall(r"listen (\d+);", text)
    for name in ("web", "ingestion"):
        port = settings_from(services[name]["environment"], monkeypatch).port_of(name)
        assert upstreams[name] == str(port), name
        assert str(port) in listens
        assert f"{port}:{port}" in edge["ports"]
        assert "container_name" not in services[name]
    assert len(set(listens)) == len(listens) == len(upstreams)
    assert "resolver 127.0.0.11" in text, "replicas are found again as they come and go"


def test_three_broker_override_is_one_kraft_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kafka3 override runs three KRaft voters as one cluster; services reach all with RF 3, min ISR 2."""
    data = merged(KAFKA3)
    brokers = kafka_brokers(data)
    assert len(brokers) == 3
    envs = {name: broker["environment"] for name, broker in brokers.items()}
    voters = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in envs.items()}
    addresses = set()
    for name, env in envs.items():
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters, name
        assert {"broker", "controller"} <= set(env["KAFKA_PROCESS_ROLES"].split(",")), name
        assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"], name
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092", name
        addresses.add(f"{name}:9092")
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3, name
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3, name
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2, name
    assert len({env["CLUSTER_ID"] for env in envs.values()}) == 1
    assert len({env["KAFKA_NODE_ID"] for env in envs.values()}) == 3
    for name in SERVICES:
        svc = data["services"][name]
        settings = settings_from(svc["environment"], monkeypatch)
        assert set(settings.bootstrap_servers) == addresses, name
        assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (3, 2), name
        for broker in brokers:
            assert svc["depends_on"][broker]["condition"] == "service_healthy", f"{name} waits for {broker}"


def test_stop_grace_covers_the_sigterm_drain() -> None:
    """Compose gives each service at least the time its SIGTERM drain takes (uvicorn, then the broker)."""
    services = compose()["services"]
    for name in SERVICES:
        grace = services[name]["stop_grace_period"]
        assert grace.endswith("s")
        assert float(grace.removesuffix("s")) >= drain_seconds(), name


def test_dockerfile_installs_the_project_and_runs_newsroom() -> None:
    """A build stage compiles the native modules into the wheel; the image installs it and runs newsroom."""
    text = (REPO / "deploy" / "Dockerfile").read_text()
    build, _, runtime = text.rpartition("\nFROM ")
    assert "FROM python:3.11" in build
    assert "deploy/native.py" in build
    assert "pip wheel" in build
    assert runtime.startswith("python:3.11")
    assert "COPY --from=build /wheels /wheels" in runtime
    assert "pip install /wheels/*.whl" in runtime
    # the image refuses to build when a compiled module would run as plain Python
    assert "if f.endswith('.py')]; assert not plain" in runtime
    assert all(f"'{module}'" in runtime for module in native_modules())
    assert 'ENTRYPOINT ["newsroom"]' in runtime


def test_the_wheel_the_image_installs_carries_templates_and_data(tmp_path: Path) -> None:
    """`pip install .` (what the Dockerfile runs) ships templates, data, demo content, native builds."""
    import subprocess
    import sys
    import zipfile

    # from a copy without build/, as a fresh checkout has it: setuptools reuses what build/ holds
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(".git", ".venv", ".run", "build", "*.egg-info", "__pycache__", "artifacts")
    shutil.copytree(REPO, source, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("newsroom-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "newsroom/rendering/templates/article.html",
        "newsroom/rendering/templates/site.css",
        "newsroom/enrichment/data/sec_listings.csv",
        "newsroom/cli/demo/seed.json",
        "newsroom/quotes/splits.csv",
        "newsroom/web/service.py",
    ):
        assert expected in names, expected
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for dotted in native_modules():
        if compiled(importlib.import_module(dotted)):  # built here: the wheel must carry the build
            path = dotted.replace(".", "/")
            for built in (f"{path}{suffix}", f"{path}__mypyc{suffix}"):
                assert built in names, built


def native_modules() -> list[str]:
    """The modules deploy/native.py compiles, as dotted names."""
    spec = importlib.util.spec_from_file_location("native_build", REPO / "deploy" / "native.py")
    assert spec is not None
    assert spec.loader is not None
    native = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native)
    return [path.split("/", 2)[2].removesuffix(".py").replace("/", ".") for path in native.MODULES]


@pytest.mark.skipif(not REQUIRED, reason="only where the builds are required (make test)")
@pytest.mark.parametrize("dotted", native_modules())
def test_the_modules_in_use_are_the_compiled_ones(dotted: str) -> None:
    """Under `make test` the package imports each mypyc build, not its .py."""
    module = importlib.import_module(dotted)
    assert compiled(module), f"{module.__file__} is plain Python: `make native` failed or was skipped"
