"""The ArgoCD (argocd/) and Tekton (ci/tekton/) manifests, checked against the real upstream APIs.

kubeconform -strict with schemas made from the pinned upstream CRDs, Tekton's own admission
checks (tekton-validate, built from github.com/tektoncd/pipeline), the real kustomize for
argocd/, and the real helm for what the chart renders. The API server side is in
test_gitops_apiserver.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
ARGOCD = REPO_ROOT / "argocd"
TEKTON = REPO_ROOT / "ci" / "tekton"
CHART = REPO_ROOT / "charts" / "archon"

TASK_FILES = sorted(TEKTON.glob("archon-*.yaml"))
DIGEST = re.compile(r"^[a-z0-9.\-/]+(:[\w.\-]+)?@sha256:[0-9a-f]{64}$")
PARAM_REF = re.compile(r"^\$\(params\.([\w-]+)\)$")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def _one(path: Path) -> dict[str, Any]:
    (doc,) = _docs(path)
    return doc


def _all_manifests() -> list[dict[str, Any]]:
    files = [*sorted(ARGOCD.glob("*.yaml")), *sorted(TEKTON.rglob("*.yaml"))]
    return [d for f in files if f.name != "kustomization.yaml" for d in _docs(f)]


# --- kubeconform with the CRD schemas -------------------------------------------------------


@pytest.mark.slow
def test_every_manifest_is_valid_under_kubeconform_strict(toolchain: dict[str, Path]) -> None:
    from archon.validate import validate_files

    results = validate_files([ARGOCD, TEKTON])
    bad = [f"{r.file}: {r.kind}/{r.name}: {r.message}" for r in results if not r.ok]
    assert not bad, "\n".join(bad)
    kinds = {r.kind for r in results}
    # the CRD kinds were checked against a schema, not skipped for want of one
    assert {"AppProject", "Application", "ApplicationSet", "Task", "Pipeline"} <= kinds
    assert {"PipelineRun", "Role", "ServiceAccount"} <= kinds
    assert all(r.status == "statusValid" for r in results)
    # kustomize's own file is left out (no Kubernetes schema exists for it)
    assert not any(r.file.endswith("kustomization.yaml") for r in results)


BROKEN = [
    # (file, from, to, what the message names)
    ("argocd/application.yaml", "releaseName:", "releseName:", "releseName"),
    ("argocd/applicationset.yaml", "goTemplate: true", "goTemplat: true", "goTemplat"),
    ("argocd/project.yaml", "clusterResourceWhitelist:", "clusterResourceAllowlst:", "Allowlst"),
    ("ci/tekton/archon-lint.yaml", "runAsNonRoot: true", 'runAsNonRoot: "yes"', "runAsNonRoot"),
    ("ci/tekton/pipeline.yaml", "    - name: lint\n", "    - nam: lint\n", "nam"),
    ("ci/tekton/pipelinerun.yaml", "pipelineRef:", "pipelineRefs:", "pipelineRefs"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("rel", "old", "new", "named"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_manifest_is_refused(
    toolchain: dict[str, Path], tmp_path: Path, rel: str, old: str, new: str, named: str
) -> None:
    from archon.validate import validate_files

    text = (REPO_ROOT / rel).read_text()
    assert old in text
    broken = tmp_path / Path(rel).name
    broken.write_text(text.replace(old, new, 1))
    (result,) = validate_files([broken])
    assert result.status == "statusInvalid"
    assert named in result.message


@pytest.mark.slow
def test_archon_validate_manifests_cli(
    toolchain: dict[str, Path], tmp_path: Path, run_cli: Any
) -> None:
    ok = run_cli("validate", "--manifests", str(ARGOCD), str(TEKTON))
    assert ok.code == 0, ok.err
    assert "argocd/application.yaml: 1 resources valid" in ok.out
    assert "ci/tekton/rbac.yaml: 5 resources valid" in ok.out

    broken = tmp_path / "application.yaml"
    broken.write_text((ARGOCD / "application.yaml").read_text().replace("path:", "pth:"))
    bad = run_cli("validate", "--manifests", str(broken), "--output", "json")
    assert bad.code == 1
    report = json.loads(bad.out)
    assert report["ok"] is False
    assert report["manifests"][0]["kind"] == "Application"
    assert "pth" in report["manifests"][0]["message"]

    # with -f as well: one report for scripts, both parts in it
    both = run_cli(
        "validate",
        "-f",
        str(REPO_ROOT / "values" / "rtx5080.yaml"),
        "--manifests",
        str(ARGOCD),
        "--output",
        "json",
    )
    assert both.code == 0, both.err
    combined = json.loads(both.out)
    assert combined["ok"] is True
    assert len(combined["scenarios"]) == 1 and len(combined["manifests"]) == 4

    missing = run_cli("validate", "--manifests", str(tmp_path / "nope"))
    assert missing.code == 2
    assert "no such file or folder" in missing.err


# --- Tekton's own admission checks ------------------------------------------------------------


@pytest.fixture(scope="session")
def tekton_validate() -> Path:
    from archon.toolchain import ensure

    return ensure("tekton-validate")


def _tekton_validate(binary: Path, *files: Path) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        [str(binary), *map(str, files)], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_tekton_manifests_pass_tektons_admission_checks(tekton_validate: Path) -> None:
    code, results = _tekton_validate(tekton_validate, *sorted(TEKTON.glob("*.yaml")))
    assert code == 0, results
    checked = {(r["kind"], r["name"]) for r in results if r["status"] == "valid"}
    assert {("Task", f.stem) for f in TASK_FILES} <= checked
    assert ("Pipeline", "archon") in checked
    assert ("PipelineRun", "archon-") in checked
    # RBAC is no Tekton kind: left alone, not passed as valid
    assert {r["status"] for r in results if r["kind"] in ("Role", "ServiceAccount")} == {"skipped"}


TEKTON_BROKEN = [
    # a runAfter to a task that does not exist: the task graph cannot be built
    ("runAfter: [render-validate]", "runAfter: [render-validat]", "render-validat"),
    # a result of a pipeline task that does not exist
    ("$(tasks.deploy.results.endpoint)", "$(tasks.deplo.results.endpoint)", "deplo"),
    # a pipeline parameter that is not declared
    ("value: $(params.namespace)", "value: $(params.namespaces)", "namespaces"),
    # a field Tekton does not know (the webhook decodes strictly)
    ("  finally:\n", "  finaly:\n", "finaly"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("old", "new", "named"), TEKTON_BROKEN, ids=[b[2] for b in TEKTON_BROKEN])
def test_tekton_admission_refuses_a_broken_pipeline(
    tekton_validate: Path, tmp_path: Path, old: str, new: str, named: str
) -> None:
    text = (TEKTON / "pipeline.yaml").read_text()
    assert old in text
    broken = tmp_path / "pipeline.yaml"
    broken.write_text(text.replace(old, new, 1))
    code, (result,) = _tekton_validate(tekton_validate, broken)
    assert code == 1
    assert result["status"] == "invalid"
    assert any(named in error for error in result["errors"]), result["errors"]


@pytest.mark.slow
def test_tekton_validate_reports_unreadable_input(tekton_validate: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    code, results = _tekton_validate(tekton_validate, bad, tmp_path / "missing.yaml")
    assert code == 2
    assert [r["status"] for r in results] == ["error", "error"]


def test_tekton_pins_agree() -> None:
    """The CRDs, the admission checks and the docs speak of one Tekton version."""
    from archon.gitops.crds import crd_set
    from archon.paths import data_file
    from archon.toolchain import load_specs

    gomod = data_file("gomod", "tekton-validate", "go.mod").read_text()
    required = re.search(r"github.com/tektoncd/pipeline (v\S+)", gomod)
    assert required is not None
    assert required.group(1) == crd_set("tekton").version == load_specs()["tekton-validate"].version


# --- what the chart renders under ArgoCD, and the AppProject --------------------------------


def _application() -> dict[str, Any]:
    return _one(ARGOCD / "application.yaml")


def _scenarios() -> list[Path]:
    return sorted((CHART / "ci").glob("*-values.yaml")) + sorted(
        (REPO_ROOT / "values").glob("*.yaml")
    )


@pytest.fixture(scope="module")
def argocd_kinds(toolchain: dict[str, Path]) -> set[tuple[str, str]]:
    """(group, kind) of everything ArgoCD would apply, over every scenario and profile.

    Rendered as ArgoCD renders the Application: helm template with --skip-tests (helm.skipTests)
    and the Application's valuesObject over the values file.
    """
    from archon.render import render_chart

    helm = _application()["spec"]["source"]["helm"]
    kinds: set[tuple[str, str]] = set()
    for scenario in _scenarios():
        rendered = render_chart(
            [scenario], overrides=helm["valuesObject"], extra_args=["--skip-tests"]
        )
        for obj in rendered.objects:
            group = obj["apiVersion"].rpartition("/")[0]
            kinds.add((group, obj["kind"]))
    return kinds


@pytest.mark.slow
def test_appproject_whitelist_is_exactly_what_the_chart_renders(
    argocd_kinds: set[tuple[str, str]],
) -> None:
    spec = _one(ARGOCD / "project.yaml")["spec"]
    allowed = {(w["group"], w["kind"]) for w in spec["namespaceResourceWhitelist"]}
    assert allowed == argocd_kinds
    # nothing cluster-wide but the namespace CreateNamespace=true makes
    assert spec["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    assert ("", "Pod") not in allowed  # the helm test Pods stay out (skipTests)


@pytest.mark.slow
def test_deployer_role_may_change_only_what_the_chart_renders(
    argocd_kinds: set[tuple[str, str]],
) -> None:
    role = next(d for d in _docs(TEKTON / "rbac.yaml") if d["kind"] == "Role")
    write = {"create", "update", "patch", "delete"}
    writable = {
        (group, resource)
        for rule in role["rules"]
        if write & set(rule["verbs"])
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    plural = {(g, _plural(k.lower())) for g, k in argocd_kinds}
    # helm's release records are Secrets; everything else is a kind the chart renders
    assert writable == plural | {("", "secrets")}
    assert "*" not in json.dumps(role["rules"])


def _plural(kind: str) -> str:
    if kind.endswith("s"):
        return kind + "es"
    if kind.endswith("y"):
        return kind[:-1] + "ies"
    return kind + "s"


def test_rbac_outside_the_namespace_is_read_only_but_for_the_release_namespace() -> None:
    docs = _docs(TEKTON / "rbac.yaml")
    namespaced = [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    assert all(d["metadata"].get("namespace") for d in namespaced)
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    grants = {
        (resource, verb, tuple(rule.get("resourceNames", [])))
        for rule in cluster_role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # no create anywhere; the only write is to the release's own Namespace object
    assert grants == {
        ("nodes", "get", ()),
        ("nodes", "list", ()),
        ("namespaces", "list", ()),
        ("namespaces", "get", ("archon-system",)),
        ("namespaces", "patch", ("archon-system",)),
    }
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == "archon-system"
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "archon-deployer", "namespace": "archon-ci"}
    ]
    assert {d["kind"] for d in docs} == {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    }


def test_application_renders_the_chart_with_files_that_exist() -> None:
    app = _application()
    source = app["spec"]["source"]
    assert source["path"] == "charts/archon"
    chart = REPO_ROOT / source["path"]
    assert (chart / "Chart.yaml").is_file()
    helm = source["helm"]
    # ArgoCD resolves value files relative to the chart folder
    for values_file in helm["valueFiles"]:
        assert (chart / values_file).resolve().is_file(), values_file
    assert helm["releaseName"] == "archon"
    assert helm["skipTests"] is True
    assert helm["valuesObject"]["test"]["argocdPostSync"]["enabled"] is True
    policy = app["spec"]["syncPolicy"]
    assert "automated" not in policy  # off by default, documented in the file
    assert set(policy["syncOptions"]) == {"CreateNamespace=true", "ServerSideApply=true"}
    assert "# automated:" in (ARGOCD / "application.yaml").read_text()


def test_applicationset_one_application_per_profile() -> None:
    appset = _one(ARGOCD / "applicationset.yaml")
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    assert spec["goTemplateOptions"] == ["missingkey=error"]
    (generator,) = spec["generators"]
    profiles = [e["profile"] for e in generator["list"]["elements"]]
    assert profiles and len(set(profiles)) == len(profiles)
    template = spec["template"]
    source = template["spec"]["source"]
    chart = REPO_ROOT / source["path"]
    for profile in profiles:
        (values_file,) = source["helm"]["valueFiles"]
        assert (chart / values_file.replace("{{ .profile }}", profile)).resolve().is_file()
    # every generated namespace is a destination of the project
    project = _one(ARGOCD / "project.yaml")["spec"]
    namespaces = {d["namespace"] for d in project["destinations"]}
    template_ns = template["spec"]["destination"]["namespace"]
    assert {template_ns.replace("{{ .profile }}", p) for p in profiles} <= namespaces
    assert _application()["spec"]["destination"]["namespace"] in namespaces
    # the generated Applications deploy like application.yaml
    assert source["helm"]["skipTests"] is True
    assert source["helm"]["releaseName"] == _application()["spec"]["source"]["helm"]["releaseName"]


def _settings() -> dict[str, str]:
    data: dict[str, str] = _one(ARGOCD / "settings.yaml")["data"]
    return data


def test_settings_defaults_are_what_the_files_say() -> None:
    """`kubectl apply -f` of a file and `kubectl apply -k argocd/` mean the same by default."""
    settings = _settings()
    project = _one(ARGOCD / "project.yaml")
    app = _application()
    appset = _one(ARGOCD / "applicationset.yaml")
    assert project["spec"]["sourceRepos"] == [settings["repoURL"]]
    for source in (app["spec"]["source"], appset["spec"]["template"]["spec"]["source"]):
        assert source["repoURL"] == settings["repoURL"]
        assert source["targetRevision"] == settings["targetRevision"]
    for doc in (project, app, appset):
        assert doc["metadata"]["namespace"] == settings["argocdNamespace"]
    servers = {d["server"] for d in project["spec"]["destinations"]}
    servers |= {app["spec"]["destination"]["server"]}
    servers |= {appset["spec"]["template"]["spec"]["destination"]["server"]}
    assert servers == {settings["destinationServer"]}
    assert app["spec"]["destination"]["namespace"] == settings["namespace"]
    assert app["spec"]["source"]["helm"]["valueFiles"] == [settings["valuesFile"]]


# --- kustomize build argocd/ ------------------------------------------------------------------


@pytest.fixture(scope="session")
def kustomize() -> Path:
    from archon.toolchain import ensure

    return ensure("kustomize")


def _build(kustomize: Path, folder: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(kustomize), "build", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.mark.slow
def test_kustomize_build_gives_the_files_unchanged_by_default(kustomize: Path) -> None:
    built = _build(kustomize, ARGOCD)
    # the settings ConfigMap is local configuration, not applied
    assert [d["kind"] for d in built] == ["AppProject", "Application"]
    assert built[0] == _one(ARGOCD / "project.yaml")
    assert built[1] == _application()


@pytest.fixture
def custom_argocd(tmp_path: Path) -> Iterator[Path]:
    """argocd/ with every setting changed and the ApplicationSet listed as well."""
    folder = tmp_path / "argocd"
    shutil.copytree(ARGOCD, folder)
    settings = yaml.safe_load((folder / "settings.yaml").read_text())
    settings["data"] = {
        "repoURL": "https://example.org/someone/archon-fork.git",
        "targetRevision": "v1.2.3",
        "argocdNamespace": "gitops",
        "destinationServer": "https://192.0.2.10:6443",
        "namespace": "llm",
        "valuesFile": "../../values/rx7900xtx.yaml",
    }
    (folder / "settings.yaml").write_text(yaml.safe_dump(settings))
    kustomization = (folder / "kustomization.yaml").read_text()
    (folder / "kustomization.yaml").write_text(
        kustomization.replace(
            "  - application.yaml\n", "  - application.yaml\n  - applicationset.yaml\n"
        )
    )
    yield folder


@pytest.mark.slow
def test_every_setting_reaches_every_manifest(kustomize: Path, custom_argocd: Path) -> None:
    built = {d["kind"]: d for d in _build(kustomize, custom_argocd)}
    assert set(built) == {"AppProject", "Application", "ApplicationSet"}
    text = yaml.safe_dump_all(built.values())
    defaults = _settings()
    for key in ("repoURL", "destinationServer", "valuesFile"):
        assert defaults[key] not in text, f"{key} default left in the output"
    for doc in built.values():
        assert doc["metadata"]["namespace"] == "gitops"
    project, app = built["AppProject"]["spec"], built["Application"]["spec"]
    appset = built["ApplicationSet"]["spec"]["template"]["spec"]
    assert project["sourceRepos"] == ["https://example.org/someone/archon-fork.git"]
    assert {d["server"] for d in project["destinations"]} == {"https://192.0.2.10:6443"}
    assert project["destinations"][0]["namespace"] == "llm"
    assert app["destination"] == {"server": "https://192.0.2.10:6443", "namespace": "llm"}
    assert app["source"]["repoURL"] == appset["source"]["repoURL"]
    assert app["source"]["targetRevision"] == appset["source"]["targetRevision"] == "v1.2.3"
    assert app["source"]["helm"]["valueFiles"] == ["../../values/rx7900xtx.yaml"]
    assert appset["destination"]["server"] == "https://192.0.2.10:6443"
    assert appset["destination"]["namespace"] == "archon-{{ .profile }}"


@pytest.mark.slow
def test_kustomize_output_is_valid(
    kustomize: Path, custom_argocd: Path, toolchain: dict[str, Path], tmp_path: Path
) -> None:
    from archon.validate import validate_files

    out = tmp_path / "built.yaml"
    out.write_text(yaml.safe_dump_all(_build(kustomize, custom_argocd)))
    results = validate_files([out])
    assert sorted(r.kind for r in results) == ["AppProject", "Application", "ApplicationSet"]
    assert all(r.ok for r in results), [r.message for r in results]


# --- Tekton conventions -----------------------------------------------------------------------


def _steps(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(step, the task spec it belongs to) for Tasks and inline taskSpecs in Pipelines."""
    spec = doc["spec"]
    if doc["kind"] == "Task":
        for step in spec["steps"]:
            yield step, spec
    if doc["kind"] == "Pipeline":
        for task in [*spec.get("tasks", []), *spec.get("finally", [])]:
            for step in (task.get("taskSpec") or {}).get("steps", []):
                yield step, task["taskSpec"]


def _tekton_docs() -> list[dict[str, Any]]:
    return [d for d in _all_manifests() if d["apiVersion"].startswith("tekton.dev/")]


def test_every_step_image_is_pinned_by_digest() -> None:
    steps = [(s, spec) for d in _tekton_docs() for s, spec in _steps(d)]
    assert len(steps) >= 8
    for step, spec in steps:
        image = step["image"]
        ref = PARAM_REF.match(image)
        if ref:  # a param: its default is the pin
            (param,) = [p for p in spec["params"] if p["name"] == ref.group(1)]
            image = param["default"]
        assert DIGEST.match(image), f"{step['name']}: {image} is not pinned by digest"


def test_every_step_runs_as_non_root_with_a_strict_script() -> None:
    for doc in _tekton_docs():
        for step, _ in _steps(doc):
            context = step["securityContext"]
            assert context["runAsNonRoot"] is True, step["name"]
            assert context.get("runAsUser", 1) != 0
            assert context["allowPrivilegeEscalation"] is False
            script = step["script"]
            assert script.startswith("#!/usr/bin/env bash\n"), step["name"]
            assert "set -euo pipefail" in script.splitlines()[1], step["name"]


def test_tasks_follow_the_catalog_conventions() -> None:
    assert [f.stem for f in TASK_FILES] == [
        "archon-deploy",
        "archon-lint",
        "archon-preflight",
        "archon-render-validate",
        "archon-smoke",
    ]
    for path in TASK_FILES:
        task = _one(path)
        assert task["kind"] == "Task" and task["metadata"]["name"] == path.stem
        annotations = task["metadata"]["annotations"]
        assert annotations["tekton.dev/pipelines.minVersion"] == "1.0.0"
        assert annotations["tekton.dev/categories"]
        assert task["metadata"]["labels"]["app.kubernetes.io/version"]
        spec = task["spec"]
        assert spec["description"].strip()
        for item in [
            *spec.get("params", []),
            *spec.get("results", []),
            *spec.get("workspaces", []),
        ]:
            assert item.get("description"), f"{path.name}: {item['name']} has no description"
        workspaces = {w["name"]: w for w in spec.get("workspaces", [])}
        if path.stem != "archon-smoke":  # the smoke test talks HTTP only
            assert workspaces["source"]["readOnly"] is True
            assert workspaces["cache"]["optional"] is True
            assert "pip install" in spec["steps"][-1]["script"]


def test_preflight_verdict_gates_the_deploy() -> None:
    preflight = _one(TEKTON / "archon-preflight.yaml")
    assert "verdict" in {r["name"] for r in preflight["spec"]["results"]}
    pipeline = _one(TEKTON / "pipeline.yaml")["spec"]
    tasks = {t["name"]: t for t in pipeline["tasks"]}
    (when,) = tasks["deploy"]["when"]
    assert when == {
        "input": "$(tasks.preflight.results.verdict)",
        "operator": "in",
        "values": ["PASS", "WARN"],
    }
    assert tasks["smoke"]["params"] == [
        {"name": "endpoint", "value": "$(tasks.deploy.results.endpoint)"}
    ]


def test_pipeline_wiring() -> None:
    pipeline = _one(TEKTON / "pipeline.yaml")["spec"]
    task_names = {_one(f)["metadata"]["name"] for f in TASK_FILES}
    refs = [t["taskRef"] for t in pipeline["tasks"]]
    assert {r["name"] for r in refs if "name" in r} == task_names
    # a finally task reports how the run ended
    (report,) = pipeline["finally"]
    assert {"name": "pipeline-status", "value": "$(tasks.status)"} in report["params"]
    # one workspace for the whole run: one claim, so the affinity assistant has one node to
    # pick and no task waits for a second claim's node
    assert [w["name"] for w in pipeline["workspaces"]] == ["shared"]
    for task in pipeline["tasks"]:
        for binding in task.get("workspaces", []):
            assert binding["workspace"] == "shared" and binding["subPath"]
    run = _one(TEKTON / "pipelinerun.yaml")["spec"]
    assert [w["name"] for w in run["workspaces"]] == ["shared"]
    assert run["taskRunSpecs"] == [
        {"pipelineTaskName": "deploy", "serviceAccountName": "archon-deployer"}
    ]
    service_account = next(d for d in _docs(TEKTON / "rbac.yaml") if d["kind"] == "ServiceAccount")
    assert service_account["metadata"]["name"] == "archon-deployer"


# --- the smoke Task's script, run for real against the vLLM simulation ----------------------


def _run_step(task: Path, step_name: str, env: dict[str, str], tmp_path: Path) -> Any:
    (step,) = [s for s in _one(task)["spec"]["steps"] if s["name"] == step_name]
    script = tmp_path / f"{step_name}.sh"
    script.write_text(step["script"])
    return subprocess.run(
        ["bash", str(script)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_smoke_task_asks_every_listed_model(tmp_path: Path) -> None:
    import sys

    from archon.simulation.server import SimulationConfig, serve

    python_dir = str(Path(sys.executable).parent)
    answered = tmp_path / "answered"
    with serve(SimulationConfig(model="archon-coder")) as server:
        env = {
            "PATH": f"{python_dir}:/usr/bin:/bin",
            "ENDPOINT": f"{server.url}/v1",
            "MODELS": "",
            "TIMEOUT": "10",
            "RESULT_ANSWERED": str(answered),
        }
        ok = _run_step(TEKTON / "archon-smoke.yaml", "smoke", env, tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert "ok: archon-coder answers" in ok.stdout
        assert answered.read_text() == "archon-coder"

        # an archetype the server does not list fails the task, naming it
        missing = _run_step(
            TEKTON / "archon-smoke.yaml",
            "smoke",
            {**env, "MODELS": "archon-coder lilith"},
            tmp_path,
        )
        assert missing.returncode != 0
        assert "does not list lilith" in missing.stderr


def _result_code(task: Path) -> str:
    """The Python that turns archon's JSON report into the task's results, /tmp made local."""
    script = _one(task)["spec"]["steps"][-1]["script"]
    match = re.search(r"<<'PY'\n(.*?)\nPY\n", script, re.S)
    assert match is not None, task.name
    return match.group(1)


def _results_from(task: Path, report: str, tmp_path: Path, *args: str) -> Any:
    import sys

    (tmp_path / "report.json").write_text(report)
    code = re.sub(r"/tmp/\w+\.json", str(tmp_path / "report.json"), _result_code(task))
    return subprocess.run(
        [sys.executable, "-", *args],
        input=code,
        env=_result_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _result_env(tmp_path: Path) -> dict[str, str]:
    return {
        "RESULT_REVISION": str(tmp_path / "revision"),
        "RESULT_STATUS": str(tmp_path / "status"),
        "RESULT_ENDPOINT": str(tmp_path / "endpoint"),
    }


def test_lint_and_preflight_results_read_archons_real_reports(tmp_path: Path, run_cli: Any) -> None:
    lint = run_cli("lint", "--output", "json", "--gpu", "RTX 5070", str(CHART / "values.yaml"))
    assert lint.code == 1
    problems = tmp_path / "problems"
    proc = _results_from(TEKTON / "archon-lint.yaml", lint.out, tmp_path, str(problems))
    assert proc.returncode == 0, proc.stderr
    assert problems.read_text() == "1"
    assert "model.maxModelLen" in proc.stdout and "fix:" in proc.stdout

    values = str(REPO_ROOT / "values" / "rtx5080.yaml")
    preflight = run_cli("preflight", "-f", values, "--output", "json")
    verdict, tokens = tmp_path / "verdict", tmp_path / "tokens"
    proc = _results_from(
        TEKTON / "archon-preflight.yaml", preflight.out, tmp_path, str(verdict), str(tokens)
    )
    assert proc.returncode == 0, proc.stderr
    assert verdict.read_text() == json.loads(preflight.out)["verdict"] == "PASS"
    assert int(tokens.read_text()) > 0


@pytest.mark.slow
def test_render_validate_result_reads_archons_real_report(
    toolchain: dict[str, Path], tmp_path: Path, run_cli: Any
) -> None:
    values = str(REPO_ROOT / "values" / "rtx5080.yaml")
    validated = run_cli("validate", "-f", values, "--output", "json")
    assert validated.code == 0
    count = tmp_path / "resources"
    proc = _results_from(
        TEKTON / "archon-render-validate.yaml", validated.out, tmp_path, str(count)
    )
    assert proc.returncode == 0, proc.stderr
    resources = len(json.loads(validated.out)["scenarios"][0]["resources"])
    assert count.read_text() == str(resources)
    assert f"{resources} resources valid" in proc.stdout


def test_deploy_results_read_archons_summary(tmp_path: Path) -> None:
    from archon.deploy.install import DeployResult, summary_json

    result = DeployResult("archon", "archon-system")
    result.revision, result.status = 3, "deployed"
    result.endpoint = "http://archon.archon-system.svc:8000/v1"
    proc = _results_from(TEKTON / "archon-deploy.yaml", summary_json(result), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "revision").read_text() == "3"
    assert (tmp_path / "status").read_text() == "deployed"
    assert (tmp_path / "endpoint").read_text() == result.endpoint


@pytest.mark.slow
def test_tekton_kustomization_applies_everything_but_the_run(kustomize: Path) -> None:
    built = {(d["kind"], d["metadata"]["name"]) for d in _build(kustomize, TEKTON)}
    expected = {
        (d["kind"], d["metadata"]["name"])
        for f in sorted(TEKTON.glob("*.yaml"))
        if f.name not in ("kustomization.yaml", "pipelinerun.yaml")
        for d in _docs(f)
    }
    assert built == expected
    assert not any(kind == "PipelineRun" for kind, _ in built)
