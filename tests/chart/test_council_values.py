"""The council's values: what `values/council.yaml` promises (every GPU piece budgeted on the RTX
5080, the router's schema agreeing with the council), the pooling runner of the embedding
archetype, and every impossible `council:`/`qdrant:` combination refused by `archon lint` with
one line naming the key, the value and the fix (the chart's _validate.tpl through the real helm).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import CHART, COUNCIL, Obj, engine_config, one

SCENARIO = CHART / "ci" / "council-values.yaml"


def _scenario() -> Obj:
    data: Obj = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    return data


def _archetype(values: Obj, name: str) -> Obj:
    (found,) = [a for a in values["archetypes"] if a["name"] == name]
    return found  # type: ignore[no-any-return]


def _lint(tmp_path: Path, values: Obj) -> list[Any]:
    from archon.lint import lint_files

    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return lint_files([path], preflight=False)


# --- values/council.yaml ----------------------------------------------------------------------


def test_the_shipped_council_budgets_every_gpu_piece_on_an_rtx_5080() -> None:
    from archon.preflight import check_values
    from archon.values import load_values

    values = load_values([COUNCIL])
    report = check_values(values)
    assert report.verdict == "PASS", [p.line() for p in report.problems]
    shares = {i["archetype"]: i for i in report.instances}
    assert set(shares) == {"roc", "embed"}, "the router and the embedding model are budgeted"
    total = values["model"]["gpuMemoryUtilization"] + sum(
        i["gpu_memory_utilization"] for i in shares.values()
    )
    assert total <= 0.95
    embed = shares["embed"]
    assert embed["kv_cache_tokens"] >= embed["max_model_len"], "one input of maxModelLen fits"


def test_the_council_node_advertises_one_gpu_slot_per_gpu_pod(
    render: Callable[..., list[Obj]],
) -> None:
    values = yaml.safe_load(COUNCIL.read_text(encoding="utf-8"))
    deployments = [o for o in render(COUNCIL) if o["kind"] == "Deployment"]
    gpu_pods = [
        d
        for d in deployments
        if "nvidia.com/gpu" in d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    ]
    assert len(gpu_pods) == 3  # the 14B server, roc and the embedding model
    assert values["gpu"]["nodeCapacity"] == len(gpu_pods)


def test_the_router_schema_is_the_councils_choice() -> None:
    """Roc answers through guided decoding: its schema allows exactly the council's members, as
    many as the router settings allow, and its max_tokens hold the longest answer."""
    values = yaml.safe_load(COUNCIL.read_text(encoding="utf-8"))
    council = values["council"]
    roc = _archetype(values, council["router"]["archetype"])
    schema = roc["guidedDecoding"]["json"]
    choice = schema["properties"]["archetypes"]
    assert schema["required"] == ["archetypes"]
    assert sorted(choice["items"]["enum"]) == sorted(council["members"])
    assert choice["minItems"] == council["router"]["minMembers"]
    assert choice["maxItems"] == council["router"]["maxMembers"]
    longest = '{"archetypes": [' + ", ".join(f'"{m}"' for m in council["members"]) + "]}"
    assert roc["sampling"]["max_tokens"] >= len(longest) // 2, "a token is ~2+ characters here"


def test_the_council_turns_everything_on(render: Callable[..., list[Obj]]) -> None:
    values = yaml.safe_load(COUNCIL.read_text(encoding="utf-8"))
    council = values["council"]
    assert council["enabled"] and council["memory"]["enabled"] and values["qdrant"]["enabled"]
    assert council["gate"]["archetype"] == "maat" and 3 <= len(council["gate"]["invariants"]) <= 4
    assert (council["veto"]["critic"], council["veto"]["escalateTo"]) == ("lilith", "phoenix")
    objects = render(COUNCIL)
    assert one(objects, "StatefulSet", "-qdrant")
    embed = engine_config(objects, "archetype-embed")
    assert embed["runner"] == "pooling"
    assert "runner" not in engine_config(objects, "archetype-roc"), "roc generates"
    assert "runner" not in engine_config(objects, "server")


def test_default_members_leave_out_every_embedding_model(render: Callable[..., list[Obj]]) -> None:
    """`members: []` means every archetype that can chat: an instance with the pooling runner
    answers /v1/embeddings only, whether or not the memory names it."""
    values = yaml.safe_load(COUNCIL.read_text(encoding="utf-8"))
    values["council"]["members"] = []
    values["council"]["memory"] = {"enabled": False, "embeddingArchetype": ""}
    values["qdrant"]["enabled"] = False
    settings = json.loads(
        one(render(values), "ConfigMap", "-gateway-config")["data"]["council.json"]
    )
    assert settings["members"] == ["maat", "lilith", "thoth", "isis", "phoenix"]
    assert sorted(settings["descriptions"]) == sorted(settings["members"])


# --- the pooling runner ------------------------------------------------------------------------


def test_an_instance_never_inherits_the_runner(render: Callable[..., list[Obj]]) -> None:
    values = _scenario()
    plain = copy.deepcopy(_archetype(values, "embed"))
    plain["name"] = "other"
    del plain["instance"]["model"]["runner"]
    values["archetypes"].append(plain)
    values["gpu"]["nodeCapacity"] = 3
    values["model"]["gpuMemoryUtilization"] = 0.7
    objects = render(values)
    assert engine_config(objects, "archetype-embed")["runner"] == "pooling"
    assert "runner" not in engine_config(objects, "archetype-other")


def test_the_helm_test_embeds_with_a_pooling_archetype_and_chats_with_the_rest(
    render: Callable[..., list[Obj]],
) -> None:
    pod = one(render(SCENARIO), "Pod", "-test-archetypes")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["ARCHON_EMBEDDERS"] == "embed"
    assert "embed" not in env["ARCHON_ARCHETYPES"].split()
    assert set(env["ARCHON_ARCHETYPES"].split()) == {"maat", "lilith", "phoenix", "roc"}


def test_a_pooling_engine_runs_no_sampler_in_its_profile() -> None:
    """vLLM's profile run ends with the pooler, not the sampler, for a pooling model: the
    vocabulary-sized logits of max_num_seqs requests never exist (gpu_model_runner.profile_run)."""
    from archon.preflight.catalog import load_catalog
    from archon.preflight.memory import activation_gib

    spec = load_catalog().find("Qwen/Qwen3-Embedding-0.6B")
    generate = activation_gib(spec, 2048, 256, engine="v1")
    pooling = activation_gib(spec, 2048, 256, engine="v1", pooling=True)
    assert pooling < generate / 4
    assert activation_gib(spec, 2048, 256, engine="v1", pooling=True) == pytest.approx(
        activation_gib(spec, 2048, 1, engine="v1", pooling=True)
    ), "without a sampler, the number of sequences does not matter"


# --- refusals: archon lint runs the chart's _validate.tpl -------------------------------------


def _set(values: Obj, dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node = values
    for key in path:
        node = node.setdefault(key, {})
    node[last] = value


def _disable(values: Obj, name: str) -> None:
    _archetype(values, name)["enabled"] = False


def _open_qdrant(values: Obj) -> None:
    _set(values, "qdrant.apiKey.existingSecret", "")
    _set(values, "apiKey.enabled", False)
    _set(values, "networkPolicy.enabled", False)


REFUSALS: list[tuple[str, Callable[[Obj], None], str, str, str]] = [
    (
        "unknown aggregator",
        lambda v: _set(v, "council.aggregator", "nobody"),
        "council.aggregator",
        "nobody is not an enabled archetype",
        "add an archetype named nobody",
    ),
    (
        "a member that does not exist",
        lambda v: _set(v, "council.members", ["maat", "ghost"]),
        "council.members[1]",
        "ghost is not an enabled archetype",
        "set council.members[1]",
    ),
    (
        "a disabled escalation",
        lambda v: _disable(v, "phoenix"),
        "council.veto.escalateTo",
        "phoenix is not an enabled archetype",
        "enable it",
    ),
    (
        "an unknown router",
        lambda v: _set(v, "council.router.archetype", "hermes"),
        "council.router.archetype",
        "hermes is not an enabled archetype",
        '("" turns the role off)',
    ),
    (
        "the embedding model as the gate",
        lambda v: _set(v, "council.gate.archetype", "embed"),
        "council.gate.archetype",
        "embed is an embedding archetype",
        "name an archetype that generates text",
    ),
    (
        "a router that can pick nobody",
        lambda v: _set(v, "council.router", {"archetype": "roc", "minMembers": 4, "maxMembers": 2}),
        "council.router.minMembers",
        "4 is above council.router.maxMembers=2",
        "minMembers <= maxMembers",
    ),
    (
        "the council named as an archetype",
        lambda v: _set(v, "council.modelName", "lilith"),
        "council.modelName",
        "lilith is also archetypes[1].name",
        "set council.modelName to a name of its own",
    ),
    (
        "the base model served as the council's name",
        lambda v: _set(v, "model.servedModelName", "council"),
        "council.modelName",
        "council is also the base model's served name",
        "set council.modelName to a name of its own",
    ),
    (
        "a Qdrant for a council without memory",
        lambda v: _set(v, "council.memory.enabled", False),
        "qdrant.enabled",
        "council.enabled=true and council.memory.enabled=false",
        "set qdrant.enabled: false",
    ),
    (
        "a Qdrant without a council",
        lambda v: _set(v, "council.enabled", False),
        "qdrant.enabled",
        "council.enabled=false and council.memory.enabled=true",
        "set qdrant.enabled: false",
    ),
    (
        "memory without a store",
        lambda v: _set(v, "qdrant.enabled", False),
        "council.memory.enabled",
        "qdrant.enabled=false and council.memory.url",
        "set qdrant.enabled: true",
    ),
    (
        "memory without an embedding model",
        lambda v: _set(v, "council.memory.embeddingArchetype", ""),
        "council.memory.enabled",
        'embeddingArchetype=""',
        "instance.model.runner: pooling",
    ),
    (
        "an unknown embedding archetype",
        lambda v: _set(v, "council.memory.embeddingArchetype", "e5"),
        "council.memory.embeddingArchetype",
        "e5 is not an enabled archetype",
        "add an instance archetype named e5",
    ),
    (
        "a chat persona as the embedding model",
        lambda v: _set(v, "council.memory.embeddingArchetype", "maat"),
        "council.memory.embeddingArchetype",
        'maat is not an embedding model (mode: prompt, instance.model.runner: "")',
        "make maat mode: instance with instance.model.runner: pooling",
    ),
    (
        "an instance without the pooling runner",
        lambda v: _archetype(v, "embed")["instance"]["model"].pop("runner"),
        "council.memory.embeddingArchetype",
        'embed is not an embedding model (mode: instance, instance.model.runner: "")',
        "instance.model.runner: pooling",
    ),
    (
        "two Qdrants",
        lambda v: _set(v, "council.memory.url", "http://qdrant.example:6333"),
        "qdrant.enabled",
        "council.memory.url=http://qdrant.example:6333",
        'set council.memory.url: ""',
    ),
    (
        "an open Qdrant without a NetworkPolicy",
        _open_qdrant,
        "qdrant.enabled",
        "with no API key",
        "or networkPolicy.enabled: true",
    ),
    (
        "the server as an embedding model",
        lambda v: _set(v, "model.runner", "pooling"),
        "model.runner",
        "pooling on the server",
        "serve the embedding model as an instance archetype",
    ),
]


@pytest.mark.parametrize(
    ("change", "key", "message", "fix"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_lint_refuses_an_impossible_council(
    tmp_path: Path,
    change: Callable[[Obj], None],
    key: str,
    message: str,
    fix: str,
) -> None:
    values = _scenario()
    change(values)
    problems = _lint(tmp_path, values)
    assert len(problems) == 1, [p.line() for p in problems]
    (problem,) = problems
    assert problem.key == key
    assert message in f"{problem.key}={problem.message}" or message in problem.message
    assert fix in problem.fix
    assert "\n" not in problem.line()


def test_the_council_needs_the_gateway(tmp_path: Path) -> None:
    roles = {"aggregator": "", "gate": {"archetype": ""}, "veto": {"critic": "", "escalateTo": ""}}
    values: Obj = {"council": {"enabled": True, **roles}}
    (problem,) = _lint(tmp_path, values)
    assert problem.key == "council.enabled"
    assert "the gateway is off" in problem.message
    assert "gateway.enabled: auto" in problem.fix


def test_a_disabled_council_names_nothing_that_must_exist(tmp_path: Path) -> None:
    """The defaults name maat, lilith and phoenix; with council.enabled=false no archetype need
    exist, and the shipped files lint clean."""
    assert _lint(tmp_path, {"council": {"aggregator": "nobody"}}) == []
    from archon.lint import lint_files

    assert lint_files([COUNCIL, SCENARIO], preflight=True) == []
