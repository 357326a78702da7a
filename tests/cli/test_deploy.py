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
from tests.native_builds import REQUIRED, compiled

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_every_service_runs_from_the_one_image() -> None:
    """Each newsroom service has a compose entry running `newsroom run <service>` from deploy/Dockerfile."""
    services = compose()["services"]
    for name in SERVICES:
        svc = services[name]
        assert svc["command"] == ["run", name]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (REPO / svc["build"]["dockerfile"]).is_file()


def test_environment_names_are_real_settings() -> None:
    """Every NEWSROOM_ variable in compose is a field of Settings, and no secret is written in it."""
    fields = {f"NEWSROOM_{name.upper()}" for name in Settings.model_fields}
    for name, svc in compose()["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if key.startswith("NEWSROOM_"):
                assert key in fields, f"{name}: {key} is not a setting"
            if key == "NEWSROOM_API_KEYS":
                assert str(value).startswith("${"), "API keys come from the environment"


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
