"""Tekton SIMULATION: a small stand-in for the tekton-pipelines-controller, for a cluster that has
the Tekton CRDs but no controller (the local cluster; the controller cannot be built here).

What is real: the PipelineRun, TaskRun, Pipeline and Task objects in the API server, under the
upstream CRD schemas; and what each Archon task does, run in-process by the Archon function the
task's step would run (lint -> archon.lint, preflight -> the preflight verdict, render-validate
-> render + kubeconform, deploy -> `archon deploy` to the local cluster, smoke -> the vLLM
simulation on loopback), so a run passes or fails for the reasons a real one would.
What is simulated: no pods, images or step containers (TaskRuns have no `podName`, so there are
no logs to stream), workspaces are not mounted (the tasks read this checkout), no webhook
validation, no timeouts, StoppedRunFinally behaves as CancelledRunFinally, and a task without an
Archon function (the inline `report` task) succeeds without running anything.

Status shapes follow tektoncd/pipeline v1.0.0 `pkg/apis/pipeline/v1` (pipelinerun_types.go,
taskrun_types.go): the `Succeeded` condition with reasons Running/Succeeded/Failed/Cancelled,
`status.childReferences[{apiVersion, kind, name, pipelineTaskName}]`, `status.skippedTasks`,
TaskRun `status.steps[{name, container, terminated}]` and `status.results[]`.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from archon.errors import ArchonError
from archon.gitops.objects import condition, get_or_none, now
from archon.gitops.tekton import GROUP_VERSION, failed_step, path
from archon.kube.config import ClusterTarget
from archon.kube.rest import Kube, KubeError, Obj
from archon.simulation.controller import ControllerLoop

BANNER = (
    "Tekton SIMULATION (no tekton-pipelines-controller here): archon.simulation.tekton walks the "
    "pipeline and runs each task's Archon function in-process"
)
FAIL_ENV = "ARCHON_TEKTON_SIM_FAIL"  # test hook: "task[,task]" forced to fail
DELAY_ENV = "ARCHON_TEKTON_SIM_DELAY"  # test hook: "task=seconds[,...]" before a task ends
RESULT_REF = re.compile(r"\$\(tasks\.([a-z0-9-]+)\.results\.([A-Za-z0-9_.-]+)\)")
MAX_DEPLOY_TIMEOUT_S = 300
STOP_GRACE_S = 30.0
ORPHANED = (
    "the Tekton simulation that ran this task stopped before it finished (steps run "
    "in-process; nothing can resume them)"
)
CANCELLED_BY_PIPELINE = "TaskRun cancelled as the PipelineRun it belongs to has been cancelled."


class StepFailed(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass
class Outcome:
    ok: bool
    results: dict[str, str] = field(default_factory=dict)
    step: str = ""
    message: str = ""
    log: str = ""


@dataclass
class TaskContext:
    params: dict[str, Any]
    repo_root: Path
    target: ClusterTarget
    log: io.StringIO


TaskFunction = Callable[[TaskContext], dict[str, str]]


def _files(ctx: TaskContext) -> list[Path]:
    values = ctx.params.get("values") or ["values/rtx5080.yaml"]
    if isinstance(values, str):
        values = values.split()
    return [ctx.repo_root / str(v) for v in values]


def _lint(ctx: TaskContext) -> dict[str, str]:
    from archon.lint import lint_files

    problems = lint_files(_files(ctx))
    for problem in problems:
        print(problem.line(), file=ctx.log)
    if problems:
        raise StepFailed("lint", f"{len(problems)} problem(s): {problems[0].line()}")
    return {"problems": "0"}


def _preflight(ctx: TaskContext) -> dict[str, str]:
    from archon.preflight.report import check_values
    from archon.values import load_values

    files = _files(ctx)
    report = check_values(load_values(files), source=", ".join(str(f) for f in files))
    figures = report.as_dict()
    results = {
        "verdict": report.verdict,
        "kv-cache-tokens": str(figures.get("kv_cache_tokens", "")),
    }
    print(f"preflight {report.verdict}", file=ctx.log)
    if report.verdict == "FAIL":
        raise StepFailed("preflight", "; ".join(p.line() for p in report.failures))
    return results


def _render_validate(ctx: TaskContext) -> dict[str, str]:
    from archon.validate import validate_scenarios

    count = 0
    for scenario in validate_scenarios(_files(ctx)):
        if scenario.error:
            raise StepFailed("validate", f"{scenario.file}: {scenario.error}")
        bad = [r for r in scenario.resources if not r.ok]
        if bad:
            raise StepFailed(
                "validate", f"{scenario.file}: {bad[0].kind}/{bad[0].name}: {bad[0].message}"
            )
        count += len(scenario.resources)
    print(f"{count} resources valid", file=ctx.log)
    return {"resources": str(count)}


def _deploy(ctx: TaskContext) -> dict[str, str]:
    from archon.deploy.install import DeployOptions, deploy

    timeout = min(int(str(ctx.params.get("timeout") or MAX_DEPLOY_TIMEOUT_S)), MAX_DEPLOY_TIMEOUT_S)
    opts = DeployOptions(
        _files(ctx),
        namespace=str(ctx.params.get("namespace") or "archon-system"),
        release=str(ctx.params.get("release") or "archon"),
        target=ctx.target,
        timeout_s=timeout,
    )
    try:
        result = deploy(opts, out=ctx.log)
    except ArchonError as exc:
        raise StepFailed("deploy", exc.line()) from exc
    return {"revision": str(result.revision), "status": result.status, "endpoint": result.endpoint}


def _smoke(ctx: TaskContext) -> dict[str, str]:
    from archon.simulation.server import SimulationConfig, serve

    # The in-cluster endpoint is not reachable from here: ask the vLLM simulation instead.
    with serve(SimulationConfig()) as sim:
        with urllib.request.urlopen(f"{sim.url}/v1/models", timeout=10) as response:
            models = [m["id"] for m in json.loads(response.read())["data"]]
        print(
            f"vLLM simulation at {sim.url} lists {models} (endpoint {ctx.params.get('endpoint')})",
            file=ctx.log,
        )
    if not models:
        raise StepFailed("smoke", "/v1/models listed no model")
    return {"answered": " ".join(models)}


TASK_FUNCTIONS: dict[str, TaskFunction] = {
    "archon-lint": _lint,
    "archon-preflight": _preflight,
    "archon-render-validate": _render_validate,
    "archon-deploy": _deploy,
    "archon-smoke": _smoke,
}
# The step whose failure a forced failure reports (the one that runs the Archon command).
MAIN_STEP = {
    "archon-lint": "lint",
    "archon-preflight": "preflight",
    "archon-render-validate": "validate",
    "archon-deploy": "deploy",
    "archon-smoke": "smoke",
}


def _env_set(name: str) -> set[str]:
    return {p.strip() for p in os.environ.get(name, "").split(",") if p.strip()}


def _env_delays() -> dict[str, float]:
    delays = {}
    for part in _env_set(DELAY_ENV):
        task, _, seconds = part.partition("=")
        try:
            delays[task] = float(seconds)
        except ValueError:
            continue
    return delays


# --- parameter substitution (the subset of docs/variables.md the Archon pipeline uses) -------


def substitute(value: Any, ctx: dict[str, Any]) -> Any:
    if isinstance(value, list):
        expanded: list[Any] = []
        for item in value:
            match = re.fullmatch(r"\$\(params\.([A-Za-z0-9_.-]+)\[\*\]\)", str(item))
            if match and isinstance(ctx["params"].get(match.group(1)), list):
                expanded += ctx["params"][match.group(1)]
            else:
                expanded.append(substitute(item, ctx))
        return expanded
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\$\(params\.([A-Za-z0-9_.-]+)(\[\*\])?\)", value)
    if whole and isinstance(ctx["params"].get(whole.group(1)), list):
        return ctx["params"][whole.group(1)]

    def one(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr.startswith("params."):
            return str(ctx["params"].get(expr[7:], match.group(0)))
        if expr == "tasks.status":
            return str(ctx["aggregate"])
        parts = expr.split(".")
        if len(parts) == 3 and parts[0] == "tasks" and parts[2] == "status":
            return str(ctx["task_status"].get(parts[1], "None"))
        if len(parts) >= 4 and parts[0] == "tasks" and parts[2] == "results":
            return str(ctx["results"].get(parts[1], {}).get(".".join(parts[3:]), match.group(0)))
        if expr == "context.pipelineRun.name":
            return str(ctx["run"])
        return match.group(0)

    return re.sub(r"\$\(([^()]+)\)", one, value)


def _deps(task: Obj) -> set[str]:
    found = set(task.get("runAfter") or [])
    text = json.dumps([task.get("params"), task.get("when")])
    found |= {m.group(1) for m in RESULT_REF.finditer(text)}
    return found


def _when_ok(task: Obj, ctx: dict[str, Any]) -> bool:
    for expr in task.get("when") or []:
        value = str(substitute(expr.get("input", ""), ctx))
        values = [str(v) for v in substitute(expr.get("values") or [], ctx)]
        inside = value in values
        if (expr.get("operator") == "in") != inside:
            return False
    return True


def _ended(step: Obj, terminated: Obj, status: Obj, ended: str) -> Obj:
    kept = {k: v for k, v in step.items() if k != "running"}
    times = {"startedAt": status.get("startTime"), "finishedAt": ended}
    return kept | {"terminated": terminated | times}


class TektonSimulation(ControllerLoop):
    """Polls the PipelineRuns of one namespace and runs them, one thread per running task."""

    banner = BANNER
    thread_name = "tekton-simulation"

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        target: ClusterTarget,
        repo_root: Path,
        fail: set[str] | None = None,
        delays: dict[str, float] | None = None,
        interval_s: float = 0.3,
        stop_grace_s: float = STOP_GRACE_S,
        out: TextIO | None = None,
    ) -> None:
        super().__init__(interval_s=interval_s, out=out)
        self.kube = kube
        self.stop_grace_s = stop_grace_s
        self.namespace = namespace
        self.target = target
        self.repo_root = repo_root
        self.fail = (fail or set()) | _env_set(FAIL_ENV)
        self.delays = (delays or {}) | _env_delays()
        self.outcomes: dict[str, Outcome] = {}  # TaskRun name -> how its function ended
        self.started: set[str] = set()
        self.workers: dict[str, threading.Thread] = {}
        self.errors: list[str] = []

    def __exit__(self, *exc: object) -> None:
        self.stop_loop()
        # A task still running (a deploy waiting for its rollout) gets a bounded time to end,
        # then its end, or its orphaning, is written: no TaskRun is left Running by a
        # simulation that is gone, and no helm call is cut off without a word.
        deadline = time.monotonic() + self.stop_grace_s
        for name, worker in self.workers.items():
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
            if name not in self.outcomes:
                self.started.discard(name)  # _settle then writes it off as orphaned
        for name in self.workers:
            taskrun = get_or_none(self.kube, path("TaskRun", self.namespace, name))
            if taskrun is not None:
                try:
                    self._settle(taskrun, cancelled=False)
                except Exception as exc:  # the API may be gone with the cluster
                    self._note(f"taskrun/{name}: {type(exc).__name__}: {exc}")

    def tick(self) -> None:
        try:
            runs = self.kube.items(path("PipelineRun", self.namespace))
        except Exception as exc:
            self._note(f"list pipelineruns: {exc}")
            return
        for run in runs:
            if condition(run, "Succeeded").get("status") in ("True", "False"):
                continue
            try:
                self.reconcile(run)
            except Exception as exc:  # one broken run must not stop the others
                self._note(f"pipelinerun/{run['metadata']['name']}: {type(exc).__name__}: {exc}")

    def _note(self, text: str) -> None:
        if not self.errors or self.errors[-1] != text:
            self.errors.append(text)
            if self.out is not None:
                print(f"  (Tekton simulation: {text})", file=self.out, flush=True)

    # -- one PipelineRun --------------------------------------------------------------------
    def _pipeline(self, run: Obj) -> Obj | None:
        spec = run.get("spec") or {}
        if isinstance(spec.get("pipelineSpec"), dict):
            return dict(spec["pipelineSpec"])
        name = str((spec.get("pipelineRef") or {}).get("name") or "")
        pipeline = get_or_none(self.kube, path("Pipeline", self.namespace, name)) if name else None
        return dict(pipeline["spec"]) if pipeline else None

    def _set_run_status(self, run: Obj, status: Obj) -> None:
        self.kube.patch(
            path("PipelineRun", self.namespace, run["metadata"]["name"]) + "/status",
            {"status": status},
        )

    def _end_run(self, run: Obj, ok: bool, reason: str, message: str, extra: Obj) -> None:
        cond = {
            "type": "Succeeded",
            "status": "True" if ok else "False",
            "reason": reason,
            "message": message,
            "lastTransitionTime": now(),
        }
        self._set_run_status(run, {"conditions": [cond], "completionTime": now(), **extra})

    def reconcile(self, run: Obj) -> None:
        name = run["metadata"]["name"]
        spec = run.get("spec") or {}
        pipeline = self._pipeline(run)
        if pipeline is None:
            ref = (spec.get("pipelineRef") or {}).get("name")
            self._end_run(
                run,
                False,
                "CouldntGetPipeline",
                f"Error retrieving pipeline for pipelinerun {self.namespace}/{name}: "
                f'pipelines.tekton.dev "{ref}" not found',
                {"startTime": now()},
            )
            return
        declared = {p["name"]: p for p in pipeline.get("params") or []}
        given = {p["name"]: p.get("value") for p in spec.get("params") or []}
        missing = [k for k, p in declared.items() if k not in given and "default" not in p]
        if missing:
            self._end_run(
                run,
                False,
                "ParameterMissing",
                f"PipelineRun {self.namespace}/{name} is missing some parameters "
                f"required by Pipeline {name}'s parameters: pipelineRun missing "
                f"parameters: {missing}",
                {"startTime": now()},
            )
            return
        params = {k: p.get("default") for k, p in declared.items()} | given
        taskruns = {
            tr["metadata"]["labels"].get("tekton.dev/pipelineTask"): tr
            for tr in self.kube.items(
                path("TaskRun", self.namespace), labelSelector=f"tekton.dev/pipelineRun={name}"
            )
        }
        dag = list(pipeline.get("tasks") or [])
        final = list(pipeline.get("finally") or [])
        cancel = str(spec.get("status") or "")
        final_names = {t["name"] for t in final}
        for tname, tr in taskruns.items():
            cancelled = cancel == "Cancelled" or (bool(cancel) and tname not in final_names)
            self._settle(tr, cancelled=cancelled)
        taskruns = {
            tr["metadata"]["labels"].get("tekton.dev/pipelineTask"): tr
            for tr in self.kube.items(
                path("TaskRun", self.namespace), labelSelector=f"tekton.dev/pipelineRun={name}"
            )
        }
        state = {t: self._state(tr) for t, tr in taskruns.items()}
        results = {
            t: {r["name"]: r.get("value") for r in (tr.get("status") or {}).get("results") or []}
            for t, tr in taskruns.items()
        }
        skipped: dict[str, str] = {
            s["name"]: s.get("reason", "")
            for s in (run.get("status") or {}).get("skippedTasks") or []
        }
        stopping = bool(cancel) or any(state.get(t["name"]) == "Failed" for t in dag)
        ctx: dict[str, Any] = {
            "params": params,
            "results": results,
            "run": name,
            "task_status": {},
            "aggregate": "",
        }
        # DAG tasks, in dependency order
        progress = True
        while progress:
            progress = False
            for task in dag:
                tname = task["name"]
                if tname in state or tname in skipped:
                    continue
                deps = _deps(task)
                if stopping:
                    if not any(state.get(t["name"]) == "Running" for t in dag):
                        skipped[tname] = "PipelineRun was stopping"
                        progress = True
                    continue
                if any(d in skipped for d in deps):
                    used = {m.group(1) for m in RESULT_REF.finditer(json.dumps(task.get("params")))}
                    skipped[tname] = (
                        "Results were missing"
                        if used & set(skipped)
                        else "Parent Tasks were skipped"
                    )
                    progress = True
                    continue
                if not all(state.get(d) == "Succeeded" for d in deps):
                    continue
                if not _when_ok(task, ctx):
                    skipped[tname] = "When Expressions evaluated to false"
                    progress = True
                    continue
                state[tname] = "Running"
                taskruns[tname] = self._start(run, task, ctx, pipeline)
        dag_done = all(
            t["name"] in skipped or state.get(t["name"]) in ("Succeeded", "Failed", "Cancelled")
            for t in dag
        )
        if dag_done and cancel != "Cancelled":
            failed_dag = any(state.get(t["name"]) in ("Failed", "Cancelled") for t in dag)
            ctx["aggregate"] = "Failed" if failed_dag else ("Completed" if skipped else "Succeeded")
            ctx["task_status"] = {t["name"]: state.get(t["name"], "None") for t in dag}
            for task in final:
                if task["name"] not in state:
                    state[task["name"]] = "Running"
                    taskruns[task["name"]] = self._start(run, task, ctx, pipeline)
        refs = [
            {
                "apiVersion": GROUP_VERSION,
                "kind": "TaskRun",
                "name": tr["metadata"]["name"],
                "pipelineTaskName": t,
            }
            for t, tr in taskruns.items()
        ]
        status: Obj = {
            "startTime": (run.get("status") or {}).get("startTime") or now(),
            "childReferences": refs,
            "skippedTasks": [{"name": k, "reason": v} for k, v in skipped.items()] or None,
            "pipelineSpec": pipeline,
        }
        everything = [t["name"] for t in dag + final]
        done = [
            t
            for t in everything
            if t in skipped or state.get(t) in ("Succeeded", "Failed", "Cancelled")
        ]
        n_failed = sum(1 for t in everything if state.get(t) == "Failed")
        n_cancelled = sum(1 for t in everything if state.get(t) == "Cancelled")
        completed = len(done) - len([t for t in skipped if t in everything])
        counts = f"Tasks Completed: {completed} (Failed: {n_failed}, Cancelled {n_cancelled})"
        if len(done) < len(everything) and not (
            cancel == "Cancelled" and not any(state.get(t) == "Running" for t in everything)
        ):
            incomplete = len(everything) - len(done)
            cond = {
                "type": "Succeeded",
                "status": "Unknown",
                "reason": "Running",
                "message": f"{counts}, Incomplete: {incomplete}, Skipped: {len(skipped)}",
                "lastTransitionTime": now(),
            }
            if cancel in ("CancelledRunFinally", "StoppedRunFinally"):
                cond["reason"] = "CancelledRunningFinally"
            self._set_run_status(run, status | {"conditions": [cond]})
            return
        if cancel:
            self._end_run(run, False, "Cancelled", f'PipelineRun "{name}" was cancelled', status)
        elif n_failed:
            self._end_run(run, False, "Failed", f"{counts}, Skipped: {len(skipped)}", status)
        else:
            self._end_run(run, True, "Succeeded", f"{counts}, Skipped: {len(skipped)}", status)

    @staticmethod
    def _state(taskrun: Obj) -> str:
        cond = condition(taskrun, "Succeeded")
        if cond.get("status") == "True":
            return "Succeeded"
        if cond.get("status") == "False":
            return "Cancelled" if cond.get("reason") == "TaskRunCancelled" else "Failed"
        return "Running"

    # -- one TaskRun ------------------------------------------------------------------------
    def _task_spec(self, task: Obj) -> tuple[str, Obj]:
        if isinstance(task.get("taskSpec"), dict):
            return "", dict(task["taskSpec"])
        ref = str((task.get("taskRef") or {}).get("name") or "")
        found = get_or_none(self.kube, path("Task", self.namespace, ref))
        return ref, dict(
            (found or {}).get("spec") or {"steps": [{"name": MAIN_STEP.get(ref, "run")}]}
        )

    def _start(self, run: Obj, task: Obj, ctx: dict[str, Any], pipeline: Obj) -> Obj:
        run_name = run["metadata"]["name"]
        name = f"{run_name}-{task['name']}"[:63]
        ref, spec = self._task_spec(task)
        params = {str(p["name"]): substitute(p.get("value"), ctx) for p in task.get("params") or []}
        for declared in spec.get("params") or []:
            params.setdefault(str(declared["name"]), declared.get("default"))
        labels = {
            "tekton.dev/pipelineRun": run_name,
            "tekton.dev/pipelineTask": task["name"],
            "tekton.dev/pipeline": str(
                (run.get("spec") or {}).get("pipelineRef", {}).get("name") or run_name
            ),
            "app.kubernetes.io/managed-by": "tekton-pipelines",
        }
        if ref:
            labels["tekton.dev/task"] = ref
        body: Obj = {
            "apiVersion": GROUP_VERSION,
            "kind": "TaskRun",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": GROUP_VERSION,
                        "kind": "PipelineRun",
                        "name": run_name,
                        "uid": run["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "params": [{"name": k, "value": v} for k, v in params.items() if v is not None],
                **({"taskRef": {"name": ref, "kind": "Task"}} if ref else {"taskSpec": spec}),
                "serviceAccountName": "default",
            },
        }
        try:
            taskrun = self.kube.create(path("TaskRun", self.namespace), body)
        except KubeError as exc:
            if exc.status != 409:
                raise
            taskrun = self.kube.get(path("TaskRun", self.namespace, name))
        steps = [str(s.get("name")) for s in spec.get("steps") or []]
        started = now()
        status = {
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "Unknown",
                    "reason": "Running",
                    "message": "Not all Steps in the Task have finished executing",
                    "lastTransitionTime": started,
                }
            ],
            "startTime": started,
            "podName": "",  # no pod: the step runs in-process (the field is required)
            "steps": [
                {"name": s, "container": f"step-{s}", "running": {"startedAt": started}}
                for s in steps
            ],
            "taskSpec": spec,
        }
        taskrun = self.kube.patch(
            path("TaskRun", self.namespace, name) + "/status", {"status": status}
        )
        if name not in self.started:
            self.started.add(name)
            worker = threading.Thread(
                target=self._execute,
                args=(name, ref or task["name"], task["name"], params, steps),
                name=f"tekton-sim-{task['name']}",
                daemon=True,
            )
            worker.start()
            self.workers[name] = worker
        return taskrun

    def _execute(
        self, name: str, ref: str, pipeline_task: str, params: dict[str, Any], steps: list[str]
    ) -> None:
        log = io.StringIO()
        ctx = TaskContext(params, self.repo_root, self.target, log)
        function = TASK_FUNCTIONS.get(ref)
        step = MAIN_STEP.get(ref, steps[-1] if steps else "run")
        outcome: Outcome
        try:
            if pipeline_task in self.fail or ref in self.fail:
                raise StepFailed(step, "forced failure (simulation test hook)")
            results = function(ctx) if function else {}
            outcome = Outcome(True, results)
        except StepFailed as exc:
            outcome = Outcome(False, step=exc.step, message=str(exc))
        except ArchonError as exc:
            outcome = Outcome(False, step=step, message=exc.line())
        except Exception as exc:  # a bug in a task function is that task's failure
            outcome = Outcome(False, step=step, message=f"{type(exc).__name__}: {exc}")
        delay = self.delays.get(pipeline_task, self.delays.get(ref, 0.0))
        end = time.monotonic() + delay
        while time.monotonic() < end:
            if self._stop.is_set():
                return  # stopped before the task ended: left to be written off as orphaned
            time.sleep(0.05)
        outcome.log = log.getvalue()
        self.outcomes[name] = outcome

    def _settle(self, taskrun: Obj, *, cancelled: bool) -> None:
        """Write a finished (or cancelled) task's end into its TaskRun."""
        name = taskrun["metadata"]["name"]
        if condition(taskrun, "Succeeded").get("status") in ("True", "False"):
            return
        status = taskrun.get("status") or {}
        ended = now()
        if cancelled:
            steps = [
                _ended(s, {"exitCode": 1, "reason": "TaskRunCancelled"}, status, ended)
                for s in status.get("steps") or []
            ]
            spec = {"status": "TaskRunCancelled", "statusMessage": CANCELLED_BY_PIPELINE}
            self.kube.patch(path("TaskRun", self.namespace, name), {"spec": spec})
            self._task_status(
                name,
                {
                    "conditions": [
                        {
                            "type": "Succeeded",
                            "status": "False",
                            "reason": "TaskRunCancelled",
                            "message": f'TaskRun "{name}" was cancelled. {CANCELLED_BY_PIPELINE}',
                            "lastTransitionTime": ended,
                        }
                    ],
                    "completionTime": ended,
                    "steps": steps,
                },
            )
            return
        outcome = self.outcomes.get(name)
        if outcome is None:
            if name not in self.started:  # its simulation ended first: nothing can resume it
                self.outcomes[name] = outcome = Outcome(
                    False, step=failed_step(taskrun) or "run", message=ORPHANED
                )
            else:
                return
        steps = []
        reached = False
        for step in status.get("steps") or []:
            if outcome.ok or (not reached and step["name"] != outcome.step):
                term = {"exitCode": 0, "reason": "Completed"}
            elif step["name"] == outcome.step:
                term, reached = {"exitCode": 1, "reason": "Error"}, True
            else:
                term = {"exitCode": 0, "reason": "Skipped"}
            steps.append(_ended(step, term, status, ended))
        if outcome.ok:
            cond = {
                "type": "Succeeded",
                "status": "True",
                "reason": "Succeeded",
                "message": "All Steps have completed executing",
            }
        else:
            cond = {
                "type": "Succeeded",
                "status": "False",
                "reason": "Failed",
                "message": f'"step-{outcome.step}" exited with code 1: {outcome.message}',
            }
        self._task_status(
            name,
            {
                "conditions": [cond | {"lastTransitionTime": ended}],
                "completionTime": ended,
                "steps": steps,
                "results": [
                    {"name": k, "type": "string", "value": v} for k, v in outcome.results.items()
                ]
                or None,
            },
        )

    def _task_status(self, name: str, status: Obj) -> None:
        status.setdefault("podName", "")  # required by the CRD; there is no pod
        self.kube.patch(path("TaskRun", self.namespace, name) + "/status", {"status": status})
