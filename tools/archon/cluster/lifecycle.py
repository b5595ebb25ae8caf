"""`archon cluster up|down|status`: kwokctl's binary runtime with binaries from the toolchain.

Everything lives under <cache>/cluster/<name>: kwokctl's workdir (KWOK_WORKDIR), the generated
kwokctl configuration and the kubeconfig. KUBECONFIG is set to that file for every kwokctl call, so
~/.kube/config is never read or written unless the user asks for --export-kubeconfig.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from archon.cluster.gpu_nodes import (
    DEFAULT_PROFILES,
    PROFILE_LABEL,
    RESOURCE,
    find_profile,
)
from archon.cluster.objects import ensure_cluster_objects, ensure_nodes
from archon.errors import ArchonError, CommandFailed
from archon.kube.client import api_client, wait_for_api
from archon.kube.config import ClusterTarget, resolve_target
from archon.kube.rest import Kube, KubeError
from archon.paths import cache_dir, data_file
from archon.toolchain import ensure, load_specs

DEFAULT_CLUSTER = "archon"
STAGES_FILE = data_file("kwok", "stages.yaml")
# The control plane's binaries, each built by the toolchain (data/toolchain.json).
COMPONENT_TOOLS = {
    "etcdBinary": "etcd",
    "kubeApiserverBinary": "kube-apiserver",
    "kubeControllerManagerBinary": "kube-controller-manager",
    "kubeSchedulerBinary": "kube-scheduler",
    "kwokControllerBinary": "kwok",
}
CREATE_TIMEOUT_S = 180
NODE_READY_TIMEOUT_S = 120  # kwok marks them Ready in seconds, minutes on a busy 2-core host
# After a restart kwok works through every pod it finds before it moves a new one past
# ContainerCreating: minutes after a long test session on 2 cores.
POD_PROGRESS_TIMEOUT_S = 300
NODE_LEASE_S = 20
HEARTBEAT_FACTOR = 5
PROBE_NAMESPACE = "default"


def cluster_name() -> str:
    """ARCHON_CLUSTER picks another cluster (the integration tests use their own)."""
    return os.environ.get("ARCHON_CLUSTER") or DEFAULT_CLUSTER


def cluster_dir() -> Path:
    return cache_dir() / "cluster" / cluster_name()


def kubeconfig_path() -> Path:
    return cluster_dir() / "kubeconfig"


def local_target() -> ClusterTarget:
    """The local cluster as a deploy target: its own kubeconfig, passed explicitly."""
    return resolve_target(kubeconfig_path())


def _workdir() -> Path:
    return cluster_dir() / "kwok"


def _cluster_workdir() -> Path:
    return _workdir() / "clusters" / cluster_name()


@dataclass
class NodeInfo:
    name: str
    profile: str
    resource: str
    capacity: int
    allocated: int
    ready: bool
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ClusterInfo:
    running: bool
    kubeconfig: Path
    server: str = ""
    version: str = ""
    nodes: list[NodeInfo] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    detail: str = ""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["KWOK_WORKDIR"] = str(_workdir())
    env["KUBECONFIG"] = str(kubeconfig_path())
    return env


def _kwokctl(args: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [str(ensure("kwokctl")), *args]
    try:
        return subprocess.run(
            cmd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(
            f"kwokctl {' '.join(args[:2])} took longer than {timeout:.0f} s",
            fix="run `archon cluster down`, then `archon cluster up` again",
        ) from exc


def _kwokctl_checked(args: list[str], *, timeout: float = 60) -> str:
    proc = _kwokctl(args, timeout=timeout)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
        tail = lines[-1] if lines else f"exit code {proc.returncode}"
        raise CommandFailed(
            f"kwokctl {' '.join(args[:2])} failed: {tail}",
            fix=f"see the logs in {_cluster_workdir() / 'logs'}; `archon cluster down` resets",
        )
    return proc.stdout


def kwokctl_config(binaries: dict[str, Path]) -> str:
    """The kwokctl configuration: binary runtime, local binaries, loopback, then the Stages."""
    options: dict[str, Any] = {
        "runtime": "binary",
        # kwokctl binds every component to 0.0.0.0 by default; this cluster stays on loopback.
        "bindAddress": "127.0.0.1",
        "kubeVersion": load_specs()["kube-apiserver"].version,
        "securePort": True,
        "kubeAuthorization": True,
        "kubeAdmission": True,
        "quietPull": True,
        "disableQPSLimits": True,
        # A restarted kwok controller takes a fake node over only when the lease its previous
        # run held expires; kwokctl's default (40 s x its heartbeat factor 5) would stall every
        # pod for 200 s after a restart. kwokctl multiplies this value by the factor too.
        "heartbeatFactor": HEARTBEAT_FACTOR,
        "nodeLeaseDurationSeconds": NODE_LEASE_S // HEARTBEAT_FACTOR,
    }
    options |= {key: str(binaries[tool]) for key, tool in COMPONENT_TOOLS.items()}
    document = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
    }
    header = "# Generated by `archon cluster up`; edits are overwritten.\n"
    stages = STAGES_FILE.read_text(encoding="utf-8")
    return header + yaml.safe_dump(document, sort_keys=False) + stages


def component_pids() -> list[int]:
    """PIDs of the cluster's processes that are still alive (kwokctl keeps one file each)."""
    pids = []
    for pid_file in sorted((_cluster_workdir() / "pids").glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if _alive(pid) and _ours(pid):
            pids.append(pid)
    return pids


def _all_components_alive() -> bool:
    """Every process kwokctl started still runs: an answering API with a dead scheduler or
    kwok controller would leave deploys Pending until their timeout."""
    expected = len(list((_cluster_workdir() / "pids").glob("*.pid")))
    return expected > 0 and len(component_pids()) == expected


def _ours(pid: int) -> bool:
    """A pid file can outlive its process (reboot, crash) and the number be reused by an
    unrelated program: only a process running one of the toolchain's binaries is ours."""
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return False
    return exe.is_relative_to(cache_dir() / "bin")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _api_answers() -> bool:
    if not kubeconfig_path().is_file():
        return False
    try:
        wait_for_api(api_client(kubeconfig_path()), timeout_s=3)
    except ArchonError:
        return False
    return True


def _build_binaries(out: TextIO) -> dict[str, Path]:
    names = [*COMPONENT_TOOLS.values(), "kwokctl"]
    missing = [n for n in names if not _installed(n)]
    if missing:
        print(f"building {', '.join(missing)} (first run only; minutes on 2 cores)", file=out)
    return {name: ensure(name, announce=True) for name in names}


def _installed(name: str) -> bool:
    from archon.toolchain.install import is_installed

    return is_installed(load_specs()[name])


def up(
    profile_names: list[str] | None = None,
    *,
    out: TextIO,
    export_kubeconfig: bool = False,
) -> ClusterInfo:
    """Start (or reuse) the cluster and register one fake node per GPU profile. Idempotent."""
    profiles = [find_profile(n) for n in (profile_names or list(DEFAULT_PROFILES))]
    binaries = _build_binaries(out)
    cluster_dir().mkdir(parents=True, exist_ok=True)
    config_file = cluster_dir() / "kwokctl.yaml"
    config_file.write_text(kwokctl_config(binaries), encoding="utf-8")
    restarted = False
    if _all_components_alive() and _api_answers():
        print(f"cluster {cluster_name()!r} already running", file=out)
    elif (_cluster_workdir() / "kwok.yaml").is_file() and kubeconfig_path().is_file():
        restarted = True
        print(f"starting cluster {cluster_name()!r} (kept from a previous run)", file=out)
        if component_pids():  # half alive: kwokctl starts nothing while it sees a pid file
            _kwokctl(["stop", "cluster", "--name", cluster_name()], timeout=60)
        _kwokctl_checked(["start", "cluster", "--name", cluster_name()], timeout=CREATE_TIMEOUT_S)
    else:
        if _cluster_workdir().exists():  # half-made: start over
            _kwokctl(["delete", "cluster", "--name", cluster_name()], timeout=60)
        print(f"creating cluster {cluster_name()!r} (kwokctl, binary runtime)", file=out)
        _kwokctl_checked(
            [
                "create",
                "cluster",
                "--name",
                cluster_name(),
                "--config",
                str(config_file),
                "--kubeconfig",
                str(kubeconfig_path()),
                "--wait",
                f"{CREATE_TIMEOUT_S}s",
                "--timeout",
                f"{CREATE_TIMEOUT_S}s",
            ],
            timeout=CREATE_TIMEOUT_S + 30,
        )
    api = api_client(kubeconfig_path())
    wait_for_api(api, timeout_s=60)
    kube = Kube(api)
    ensure_cluster_objects(kube)
    ensure_nodes(kube, profiles)
    _wait_nodes_ready(kube, [p.node_name for p in profiles])
    for name in release_stuck_pods(kube, [p.node_name for p in profiles]):
        print(f"force-deleted pod {name}: it was stuck terminating on a fake node", file=out)
    if restarted:
        print("waiting until the fake nodes start pods again ...", file=out, flush=True)
        _wait_pods_progress(kube, profiles[0].node_name)
    if export_kubeconfig:
        target = export_to_user_kubeconfig()
        print(f"kubeconfig context kwok-{cluster_name()} merged into {target}", file=out)
    return cluster_status()


def stuck_pods(pods: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Pods past their deletion deadline (`deletionTimestamp` is set to the moment the grace
    period ends). On a fake node the kwok controller finishes a deletion at once; one it missed
    while the control plane was down stays Terminating and keeps its GPU from the scheduler."""
    stuck = []
    for pod in pods:
        stamp = (pod.get("metadata") or {}).get("deletionTimestamp")
        if not stamp:
            continue
        deadline = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        if deadline <= now:
            stuck.append(pod)
    return stuck


def release_stuck_pods(kube: Kube, nodes: list[str]) -> list[str]:
    """Force-delete (grace 0) the stuck pods of the fake nodes; returns `namespace/name` of each."""
    released = []
    now = datetime.now(UTC)
    for node in nodes:
        pods = kube.items("/api/v1/pods", fieldSelector=f"spec.nodeName={node}")
        for pod in stuck_pods(pods, now):
            meta = pod["metadata"]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            try:
                kube.request("DELETE", path, {"gracePeriodSeconds": 0})
            except KubeError as exc:
                if exc.status != 404:
                    raise
            released.append(f"{meta['namespace']}/{meta['name']}")
    return released


def _wait_pods_progress(kube: Kube, node: str) -> None:
    """Start a probe pod on a fake node and wait until it runs, so a restarted cluster is handed
    back only once kwok moves new pods along again (a deploy right after would otherwise spend
    its timeout waiting for kwok)."""
    name = f"archon-probe-{os.getpid()}-{int(time.time())}"
    path = f"/api/v1/namespaces/{PROBE_NAMESPACE}/pods"
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "archon-probe"}},
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.10"}],
        },
    }
    deadline = time.monotonic() + POD_PROGRESS_TIMEOUT_S
    while True:
        try:
            kube.create(path, probe)
            break
        except KubeError as exc:
            # the controller manager recreates the namespace's default service account a moment
            # after a restart; until then admission refuses every pod that would use it
            if exc.status != 403 or "serviceaccount" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        while time.monotonic() < deadline:
            if (kube.get(f"{path}/{name}").get("status") or {}).get("phase") == "Running":
                return
            time.sleep(0.5)
        raise ArchonError(
            f"the fake node {node} did not start a pod within {POD_PROGRESS_TIMEOUT_S} s",
            fix=f"see {_cluster_workdir() / 'logs' / 'kwok-controller.log'}",
        )
    finally:
        try:
            kube.request("DELETE", f"{path}/{name}", {"gracePeriodSeconds": 0})
        except KubeError as exc:
            if exc.status != 404:
                raise


def _wait_nodes_ready(kube: Kube, names: list[str]) -> None:
    deadline = time.monotonic() + NODE_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        ready = {
            n["metadata"]["name"]
            for n in kube.items("/api/v1/nodes", labelSelector=PROFILE_LABEL)
            if _condition(n, "Ready")
        }
        if set(names) <= ready:
            return
        time.sleep(0.5)
    raise ArchonError(
        f"fake nodes {', '.join(names)} not Ready after {NODE_READY_TIMEOUT_S} s",
        fix=f"see {_cluster_workdir() / 'logs' / 'kwok-controller.log'}",
    )


def _condition(obj: dict[str, Any], kind: str) -> bool:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return bool(cond.get("status") == "True")
    return False


def down(*, out: TextIO, timeout_s: float = 30) -> None:
    """Stop and delete the cluster; afterwards none of its processes runs."""
    before = component_pids()
    if _cluster_workdir().exists():
        _kwokctl(["delete", "cluster", "--name", cluster_name()], timeout=120)
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in before) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in (p for p in before if _alive(p)):  # kwokctl started these for us
        os.kill(pid, signal.SIGKILL)
    # Nothing of a deleted cluster is worth keeping (a new one gets new certificates and ports).
    shutil.rmtree(cluster_dir(), ignore_errors=True)
    print(f"cluster {cluster_name()!r} deleted; {len(before)} processes stopped", file=out)


def cluster_status() -> ClusterInfo:
    pids = component_pids()
    info = ClusterInfo(running=False, kubeconfig=kubeconfig_path(), pids=pids)
    if not pids:
        info.detail = "not running (run `archon cluster up`)"
        return info
    if not _api_answers():
        info.detail = f"{len(pids)} processes, but the API does not answer"
        return info
    kube = Kube(api_client(kubeconfig_path()))
    info.running = True
    info.server = str(kube.api.configuration.host)
    info.version = str(kube.get("/version").get("gitVersion", ""))
    pods = kube.items("/api/v1/pods", fieldSelector="status.phase!=Succeeded,status.phase!=Failed")
    for node in kube.items("/api/v1/nodes"):
        labels = node["metadata"].get("labels") or {}
        capacity = (node.get("status") or {}).get("capacity") or {}
        resource = next((r for r in RESOURCE.values() if r in capacity), "")
        used = _allocated(pods, node["metadata"]["name"], resource) if resource else 0
        info.nodes.append(
            NodeInfo(
                name=node["metadata"]["name"],
                profile=labels.get(PROFILE_LABEL, ""),
                resource=resource,
                capacity=int(capacity.get(resource, 0)) if resource else 0,
                allocated=used,
                ready=_condition(node, "Ready"),
                labels=labels,
            )
        )
    return info


def _allocated(pods: list[dict[str, Any]], node: str, resource: str) -> int:
    total = 0
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") != node:
            continue
        for container in pod["spec"].get("containers") or []:
            limits = (container.get("resources") or {}).get("limits") or {}
            total += int(limits.get(resource, 0))
    return total


def export_to_user_kubeconfig() -> Path:
    """Merge the cluster's context into ~/.kube/config (only on --export-kubeconfig)."""
    target = Path(os.environ.get("HOME", "~")).expanduser() / ".kube" / "config"
    ours = yaml.safe_load(kubeconfig_path().read_text(encoding="utf-8")) or {}
    theirs: dict[str, Any] = {}
    if target.is_file():
        theirs = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
    for section in ("clusters", "users", "contexts"):
        mine = {e["name"]: e for e in ours.get(section) or []}
        kept = [e for e in theirs.get(section) or [] if e.get("name") not in mine]
        theirs[section] = kept + list(mine.values())
    theirs.setdefault("apiVersion", "v1")
    theirs.setdefault("kind", "Config")
    theirs.setdefault("current-context", ours.get("current-context", ""))
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.archon-{os.getpid()}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(yaml.safe_dump(theirs, sort_keys=False))
    os.replace(staged, target)
    return target
