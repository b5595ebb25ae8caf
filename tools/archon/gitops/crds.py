"""The upstream ArgoCD and Tekton CRDs: read from their Go modules, installed, turned into schemas.

The CRDs are never copied into this repository. Each set is pinned in data/toolchain.json to a
module and an exact version; `go mod download` puts the module zip in the Go module cache
(checked against the checksum database), and the CRD files are read from there, the way envtest
finds the CRDs of a dependency. The same documents are installed into a cluster (server-side
apply: the ApplicationSet CRD is too large for the annotation a client-side apply writes) and
converted into kubeconform JSON schemas, so offline validation and the API server judge a
manifest by the same schema.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

import yaml

from archon.errors import ArchonError, ToolchainError, UsageError
from archon.paths import cache_dir, data_file
from archon.toolchain.go import module_dir

if TYPE_CHECKING:  # the kubernetes client is slow to import; offline validation never needs it
    from archon.kube.rest import Kube

CRD_API = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
STAMP = ".archon-ok"
ESTABLISH_TIMEOUT_S = 60.0

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Doc = dict[str, Any]


@dataclass(frozen=True)
class CrdSet:
    name: str
    module: str
    version: str
    paths: tuple[str, ...]


@cache
def _pins() -> dict[str, Any]:
    with data_file("toolchain.json").open(encoding="utf-8") as fh:
        crds: dict[str, Any] = json.load(fh)["crds"]
    return {name: raw for name, raw in crds.items() if not name.startswith("_")}


def crd_sets() -> dict[str, CrdSet]:
    return {
        name: CrdSet(name, raw["module"], raw["version"], tuple(raw["paths"]))
        for name, raw in _pins().items()
    }


def crd_set(which: str) -> CrdSet:
    sets = crd_sets()
    if which not in sets:
        raise UsageError(f"unknown CRD set {which!r}", fix=f"use one of: {', '.join(sorted(sets))}")
    return sets[which]


@cache
def _documents(which: str) -> tuple[Doc, ...]:
    pins = crd_set(which)
    root = module_dir(pins.module, pins.version)
    docs: list[Doc] = []
    for rel in pins.paths:
        path = root / rel
        if not path.is_file():
            raise ToolchainError(
                f"{pins.module}@{pins.version} has no file {rel}",
                fix=f"correct crds.{which}.paths in data/toolchain.json",
            )
        with path.open(encoding="utf-8") as fh:
            for doc in yaml.load_all(fh, Loader=_Loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    docs.append(doc)
    return tuple(docs)


def crd_documents(which: str) -> list[Doc]:
    """The CustomResourceDefinitions of one pinned set ("argocd", "tekton"), as parsed YAML."""
    return [copy.deepcopy(doc) for doc in _documents(which)]


def _established(crd: Doc) -> tuple[bool, str]:
    for cond in (crd.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Established":
            return cond.get("status") == "True", str(cond.get("message") or "")
    return False, ""


def install_crds(
    kube: Kube, which: str, *, out: TextIO, timeout_s: float = ESTABLISH_TIMEOUT_S
) -> list[str]:
    """Server-side apply every CRD of the set, then wait until each one is Established.

    Returns the CRD names. Idempotent: a second call re-applies the same documents.
    """
    pins = crd_set(which)
    docs = crd_documents(which)
    names: list[str] = []
    print(f"installing {len(docs)} {which} CRDs from {pins.module}@{pins.version}", file=out)
    for doc in docs:
        name = str(doc["metadata"]["name"])
        kube.apply(f"{CRD_API}/{quote(name)}", doc)
        names.append(name)
        print(f"  customresourcedefinition/{name} applied (server-side)", file=out, flush=True)
    start = time.monotonic()
    deadline = start + timeout_s
    pending = list(names)
    message = ""
    while pending:
        current = pending[0]
        ok, message = _established(kube.get(f"{CRD_API}/{quote(current)}"))
        if ok:
            pending.pop(0)
            continue
        if time.monotonic() >= deadline:
            raise ArchonError(
                f"customresourcedefinition/{current} not Established within {timeout_s:.0f} s"
                + (f" ({message})" if message else ""),
                fix="check the API server log with `archon cluster status`",
            )
        time.sleep(0.2)
    print(
        f"  {len(names)} {which} CRDs established in {time.monotonic() - start:.1f} s",
        file=out,
        flush=True,
    )
    return names


# --- kubeconform schemas -------------------------------------------------------------------


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONE = ("items", "additionalProperties", "not")


def to_json_schema(schema: Any) -> Any:
    """One CRD version's openAPIV3Schema as a strict JSON schema for kubeconform.

    As kubeconform's openapi2jsonschema script does, an object that lists its properties gets
    `additionalProperties: false` (the root included), so an unknown or misspelt field fails;
    except where the CRD keeps unknown fields itself (`x-kubernetes-preserve-unknown-fields`),
    because the API server accepts anything there too. `nullable` becomes a null type, and the
    legacy `int-or-string` format becomes a oneOf. The walk follows schema keywords only, so a
    field that happens to be called `properties` or `nullable` is left alone.
    """
    if not isinstance(schema, dict):
        return schema
    if schema.get("format") == "int-or-string":
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    result = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(result.get(key), dict):
            result[key] = {name: to_json_schema(sub) for name, sub in result[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(result.get(key), list):
            result[key] = [to_json_schema(sub) for sub in result[key]]
    for key in _SCHEMA_ONE:
        if isinstance(result.get(key), list):
            result[key] = [to_json_schema(sub) for sub in result[key]]
        elif key in result:
            result[key] = to_json_schema(result[key])
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    if result.pop("nullable", False) is True and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    return result


def schema_files(doc: Doc) -> dict[str, Any]:
    """`{group}/{kind}_{version}.json` (lowercase) -> schema, for every version of one CRD."""
    spec = doc["spec"]
    group = str(spec["group"]).lower()
    kind = str(spec["names"]["kind"]).lower()
    files: dict[str, Any] = {}
    for version in spec.get("versions") or []:
        raw = (version.get("schema") or {}).get("openAPIV3Schema")
        if raw is not None:
            files[f"{group}/{kind}_{str(version['name']).lower()}.json"] = to_json_schema(raw)
    return files


def crd_schemas_root() -> Path:
    # a new pin (version or file list) gets a new folder instead of a stale cache
    digest = hashlib.sha256(json.dumps(_pins(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "schemas" / "crds" / digest


def crd_schema_location() -> str:
    """The -schema-location template for kubeconform that finds the CRD schemas."""
    return (
        str(crd_schemas_root()) + "/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
    )


def ensure_crd_schemas() -> Path:
    """Write the JSON schemas of every pinned CRD set into the cache once; return their folder."""
    root = crd_schemas_root()
    if (root / STAMP).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="archon-crd-schemas-", dir=root.parent) as tmp:
        staged = Path(tmp) / "staged"
        stamp = []
        for which, pins in crd_sets().items():
            for doc in _documents(which):
                for rel, schema in schema_files(doc).items():
                    target = staged / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(json.dumps(schema), encoding="utf-8")
            stamp.append(f"{which} {pins.module}@{pins.version}")
        (staged / STAMP).write_text("\n".join(stamp) + "\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(staged, root)
    return root
