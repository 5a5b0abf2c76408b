"""deploy/k8s/: every manifest, and every overlay as rendered, against Kubernetes' schemas.

The schemas are kubernetes-validate's strict ones for one pinned Kubernetes version: an
unknown or misspelt field fails, not only a wrong type. Beyond the schemas, the checks
below tie the objects to each other and to the image (selectors, ports, probes, the UID,
the shutdown deadline), which no schema can see.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy import dockerfile
from tests.deploy.kustomize import Manifest, identity, load_documents, render
from tests.deploy.settings_env import load_with_environment

# the oldest Kubernetes release these manifests promise to work on, and the newest
# kubernetes-validate knows (an API removed since would fail there)
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
K8S = dockerfile.REPO / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())


def validate(manifest: Manifest) -> None:
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def by_kind(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_spec(obj: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def container(obj: Manifest) -> dict[str, Any]:
    containers = pod_spec(obj)["containers"]
    assert len(containers) == 1, obj["metadata"]["name"]
    found: dict[str, Any] = containers[0]
    return found


def cpu_cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_there_are_a_staging_and_a_production_overlay() -> None:
    assert OVERLAYS == ["production", "staging"]


@pytest.mark.parametrize(
    "path", sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
)
def test_every_base_manifest_is_valid_against_the_kubernetes_schemas(path: str) -> None:
    documents = load_documents(BASE / path)
    assert documents
    for manifest in documents:
        validate(manifest)


def test_the_base_lists_every_manifest_in_its_folder() -> None:
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_to_valid_kubernetes_objects(overlay: str) -> None:
    objects = render(K8S / "overlays" / overlay)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Job",
            "Namespace",
            "PodDisruptionBudget",
            "Service",
        ]
    )
    for manifest in objects:
        validate(manifest)


def test_the_schema_check_rejects_a_misspelt_field_and_a_wrong_type() -> None:
    serve = by_kind(render(K8S / "overlays" / "production"), "Deployment")["modelux-serve"]
    validate(serve)

    misspelt = copy.deepcopy(serve)
    container(misspelt)["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        validate(misspelt)

    wrong_type = copy.deepcopy(serve)
    pod_spec(wrong_type)["terminationGracePeriodSeconds"] = "45s"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(wrong_type)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_objects_fit_together(overlay: str) -> None:
    objects = render(K8S / "overlays" / overlay)
    deployments = by_kind(objects, "Deployment")
    serve, worker = deployments["modelux-serve"], deployments["modelux-worker"]
    job = by_kind(objects, "Job")["modelux-migrate"]
    service = by_kind(objects, "Service")["modelux-serve"]
    pdb = by_kind(objects, "PodDisruptionBudget")["modelux-serve"]
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["modelux-serve"]
    config = by_kind(objects, "ConfigMap")["modelux-config"]["data"]

    # selectors pick serve's pods and only them
    serve_labels = serve["spec"]["template"]["metadata"]["labels"]
    worker_labels = worker["spec"]["template"]["metadata"]["labels"]
    for selector in (serve["spec"]["selector"]["matchLabels"], pdb["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= serve_labels.items()
        assert not selector.items() <= worker_labels.items()
    assert service["spec"]["selector"].items() <= serve_labels.items()
    assert not service["spec"]["selector"].items() <= worker_labels.items()
    assert worker["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()

    # the Service and the probes reach the port serve listens on
    serve_ports = {p["name"]: p["containerPort"] for p in container(serve)["ports"]}
    assert serve_ports == {"http": int(config["MODELUX_PORT"])}
    assert service["spec"]["ports"][0]["targetPort"] in serve_ports
    assert container(serve)["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container(serve)["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    worker_ports = {p["name"]: p["containerPort"] for p in container(worker)["ports"]}
    assert worker_ports == {"health": int(config["MODELUX_WORKER_HEALTH_PORT"])}
    assert container(worker)["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}

    # each runs its command; serve gets no more processes than CPUs
    args = container(serve)["args"]
    assert args[:2] == ["serve", "--workers"]
    assert 1 <= int(args[2]) <= cpu_cores(container(serve)["resources"]["limits"]["cpu"])
    assert container(worker)["args"] == ["worker"]
    assert container(job)["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"

    # the autoscaler owns serve's replica count
    assert "replicas" not in serve["spec"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "modelux-serve",
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert worker["spec"]["replicas"] >= 1

    # SIGKILL comes only after the drain and the grace the settings give
    deadline = float(config["MODELUX_SHUTDOWN_DRAIN_SECONDS"]) + float(
        config["MODELUX_SHUTDOWN_GRACE_SECONDS"]
    )
    for obj in (serve, worker):
        assert pod_spec(obj)["terminationGracePeriodSeconds"] > deadline

    # one image, tagged, running as the image's own non-root user on a read-only root
    images = {container(o)["image"] for o in (serve, worker, job)}
    assert len(images) == 1
    name, _, tag = images.pop().rpartition(":")
    assert name and tag and tag != "latest"
    runtime = dockerfile.parse()[-1]
    user = runtime.last("USER")
    assert user is not None
    image_uid = int(user.arguments.split(":")[0])
    for obj in (serve, worker, job):
        security = pod_spec(obj)["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == image_uid
        assert container(obj)["securityContext"]["readOnlyRootFilesystem"] is True
        assert container(obj)["securityContext"]["allowPrivilegeEscalation"] is False
        mounts = {m["mountPath"]: m["name"] for m in container(obj)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        # the only writable places: /tmp and the data directory, both emptyDirs
        assert set(mounts) == {"/tmp", config["MODELUX_DATA_DIR"]}
        assert all("emptyDir" in volumes[name] for name in mounts.values())
        sources = [next(iter(ref.values()))["name"] for ref in container(obj)["envFrom"]]
        assert sources == ["modelux-config", "modelux-secrets"]

    # everything lands in the overlay's namespace, which the overlay creates
    namespaces = by_kind(objects, "Namespace")
    assert len(namespaces) == 1
    namespace = next(iter(namespaces))
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {namespace}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_never_applies_the_placeholder_secret(overlay: str) -> None:
    # the real Secret is created by hand; applying the base's placeholders would replace it
    assert not by_kind(render(K8S / "overlays" / overlay), "Secret")
    placeholder = by_kind(render(BASE), "Secret")["modelux-secrets"]["stringData"]
    assert "REPLACE-ME" in placeholder["MODELUX_SECRET_KEY"]
    assert "REPLACE-ME" in placeholder["MODELUX_DATABASE_URL"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_config_map_and_secret_keys_are_settings_modelux_accepts(
    overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = by_kind(render(K8S / "overlays" / overlay), "ConfigMap")["modelux-config"]["data"]
    secret = by_kind(render(BASE), "Secret")["modelux-secrets"]["stringData"]
    settings = load_with_environment({**config, **secret}, monkeypatch, tmp_path)
    assert settings.env == "production"
    assert settings.host == "0.0.0.0"
    assert settings.public_url is not None and settings.public_url.startswith("https://")
    assert settings.shared_counters  # PostgreSQL and Redis: serve leaves the jobs to the worker
    assert not settings.serve_runs_background
    assert settings.log_format == "json" and settings.access_log
    assert settings.worker_health_port == 8081
    assert settings.trusted_proxy_list


def _normalise(objects: list[Manifest]) -> dict[tuple[str, str, str], Manifest]:
    return {identity(o): o for o in objects}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_python_renderer_agrees_with_kubectl_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the Python renderer alone checks the overlays")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    theirs = [d for d in yaml.safe_load_all(out) if d is not None]
    assert _normalise(render(K8S / "overlays" / overlay)) == _normalise(theirs)
