"""A small kustomize: renders deploy/k8s/ overlays in Python so CI needs no kubectl.

It implements only the part of kustomize the manifests use: `resources` (files and
directories with their own kustomization.yaml), `namespace`, `images`, `replicas` and
`patches` given by `path` (strategic-merge patches, `$patch: delete` included). Anything
else in a kustomization.yaml is refused rather than ignored, so the manifests cannot grow
a feature this renderer would silently get wrong. When kubectl is installed,
test_kubernetes.py checks that kubectl's own kustomize renders the same objects.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
# the strategic-merge keys of the lists the manifests patch (Kubernetes' own patchMergeKey);
# a list of objects not named here is replaced whole, as kustomize does
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "envFrom": None,
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


class UnsupportedKustomization(Exception):
    pass


def load_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def identity(manifest: Manifest) -> tuple[str, str, str]:
    meta = manifest.get("metadata", {})
    return (manifest["kind"], meta.get("namespace", ""), meta["name"])


def render(directory: Path) -> list[Manifest]:
    """The objects `kubectl kustomize DIRECTORY` would print, in file order."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(f"{directory}: {sorted(unknown)} not supported by this renderer")
    if kustomization.get("kind", "Kustomization") != "Kustomization":
        raise UnsupportedKustomization(f"{directory}: kind {kustomization['kind']}")

    objects: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        objects.extend(render(target) if target.is_dir() else load_documents(target))

    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise UnsupportedKustomization(f"{directory}: patch {patch_entry} (only `path` is supported)")
        for patch in load_documents(directory / patch_entry["path"]):
            objects = _apply_patch(objects, patch)

    for image in kustomization.get("images", []):
        _set_image(objects, image)
    for replica in kustomization.get("replicas", []):
        _set_replicas(objects, replica)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    return objects


def _matches(obj: Manifest, patch: Manifest) -> bool:
    return bool(
        obj["kind"] == patch["kind"]
        and obj["apiVersion"] == patch["apiVersion"]
        and obj["metadata"]["name"] == patch["metadata"]["name"]
    )


def _apply_patch(objects: list[Manifest], patch: Manifest) -> list[Manifest]:
    targets = [obj for obj in objects if _matches(obj, patch)]
    if len(targets) != 1:
        raise UnsupportedKustomization(f"patch for {identity(patch)} matches {len(targets)} objects")
    if patch.get("$patch") == "delete":
        return [obj for obj in objects if obj is not targets[0]]
    merged = strategic_merge(targets[0], {k: v for k, v in patch.items() if k != "$patch"})
    return [merged if obj is targets[0] else obj for obj in objects]


def strategic_merge(base: Any, patch: Any, key: str | None = None) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        if "$patch" in patch:
            raise UnsupportedKustomization(f"nested $patch directive under {key!r}")
        out = copy.deepcopy(base)
        for name, value in patch.items():
            if value is None:
                out.pop(name, None)
            elif name in out:
                out[name] = strategic_merge(out[name], value, name)
            else:
                out[name] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        if merge_key is None:
            raise UnsupportedKustomization(f"patching the list {key!r} is not supported")
        out_list = copy.deepcopy(base)
        for item in patch:
            found = [i for i, existing in enumerate(out_list) if existing.get(merge_key) == item[merge_key]]
            if found:
                out_list[found[0]] = strategic_merge(out_list[found[0]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def _pod_containers(obj: Manifest) -> list[Manifest]:
    spec = obj.get("spec", {})
    template = spec.get("jobTemplate", {}).get("spec", spec).get("template", {})
    pod = template.get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _set_image(objects: list[Manifest], image: dict[str, str]) -> None:
    if set(image) - {"name", "newName", "newTag"}:
        raise UnsupportedKustomization(f"images entry {image}")
    for obj in objects:
        for container in _pod_containers(obj):
            name, _, tag = container["image"].partition(":")
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            tag = image.get("newTag", tag)
            container["image"] = f"{name}:{tag}" if tag else name


def _set_replicas(objects: list[Manifest], replica: dict[str, Any]) -> None:
    targets = [o for o in objects if o["metadata"]["name"] == replica["name"] and "replicas" in o["spec"]]
    if len(targets) != 1:
        raise UnsupportedKustomization(f"replicas for {replica['name']} match {len(targets)} objects")
    targets[0]["spec"]["replicas"] = replica["count"]
