"""`archon bench council`: what the toolkit and the gateway add to a council.

Everything runs through the real LiteLLM proxy, rendered from the chart with the values
(values/council.yaml by default), over vLLM simulations. Each simulated reply is written to its
archetype's max_tokens at a fixed time per token, so a call's latency follows its token budget as
on a GPU. Times are scaled down from an RTX 5080 so the run takes seconds: the 14B server at
FIRST_TOKEN_S and TOKEN_S, the 0.5B router about ten times faster per token (it reads a tenth of
the weights per token). The simulation does not model a GPU batching concurrent requests, so the
ratios below measure Archon and the gateway, not vLLM.

Targets:
- fan-out: 6 and 20 concurrent voices take <= 1.2x the slowest single call;
- router: its pass is under 10 % of a whole council call (route, fan-out, aggregation, review,
  gate);
- memory: upsert and recall latency per round with the embedded store (qdrant-client local mode
  and the shipped static embedding model), reported.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archon.bench.base import BenchResult
from archon.council import Council, GatewayClient, Settings
from archon.gateway.config import COUNCIL, gateway_files
from archon.gateway.local import local_stack
from archon.paths import profiles_dir
from archon.render import render_chart
from archon.simulation import SimulationConfig

if TYPE_CHECKING:
    import archon_memory
else:
    from archon.council import archon_memory

TARGET_RATIO = 1.2
TARGET_ROUTER_SHARE = 0.10
VOICES = (6, 20)
FIRST_TOKEN_S = 0.3
TOKEN_S = 0.001
ROUTER_SPEEDUP = 10.0
MEMORY_ROUNDS = 5
QUESTION = "Review this function for bugs: def mean(xs): return sum(xs) / len(xs)"


@dataclass
class CouncilTimings:
    archetypes: list[str] = field(default_factory=list)
    singles_s: dict[str, float] = field(default_factory=dict)
    voices_s: dict[int, float] = field(default_factory=dict)
    council_s: float = 0.0
    router_s: float = 0.0
    path: list[str] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    gateway_start_s: float = 0.0

    @property
    def slowest_single_s(self) -> float:
        return max(self.singles_s.values(), default=0.0)

    def ratio(self, voices: int) -> float:
        slowest = self.slowest_single_s
        return self.voices_s.get(voices, float("inf")) / slowest if slowest else float("inf")

    @property
    def router_share(self) -> float:
        return self.router_s / self.council_s if self.council_s else float("inf")

    @property
    def meets_target(self) -> bool:
        return (
            not self.failures
            and all(self.ratio(v) <= TARGET_RATIO for v in VOICES)
            and self.router_share < TARGET_ROUTER_SHARE
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "archetypes": self.archetypes,
            "simulated_first_token_s": FIRST_TOKEN_S,
            "simulated_token_s": TOKEN_S,
            "singles_s": {k: round(v, 3) for k, v in self.singles_s.items()},
            "slowest_single_s": round(self.slowest_single_s, 3),
            "voices_s": {str(k): round(v, 3) for k, v in self.voices_s.items()},
            "ratios": {str(v): round(self.ratio(v), 3) for v in self.voices_s},
            "target_ratio": TARGET_RATIO,
            "council_s": round(self.council_s, 3),
            "router_s": round(self.router_s, 3),
            "router_share": round(self.router_share, 4),
            "target_router_share": TARGET_ROUTER_SHARE,
            "council_path": self.path,
            "memory": self.memory,
            "gateway_start_s": round(self.gateway_start_s, 2),
            "failures": self.failures,
            "meets_target": self.meets_target,
        }


def _settings(values: Path) -> Settings:
    rendered = gateway_files(render_chart([values]).objects)
    if COUNCIL not in rendered:
        return Settings()
    # The memory is measured on its own below: here it would add the embedder to every call.
    return dataclasses.replace(Settings.from_dict(json.loads(rendered[COUNCIL])), memory=False)


async def _voices(client: GatewayClient, names: list[str], count: int) -> tuple[float, list[str]]:
    """`count` concurrent calls over the archetypes in turn, timed as one fan-out."""
    voices = tuple(itertools.islice(itertools.cycle(names), count))
    council = Council(client, Settings(members=voices, timeout_s=120))
    result = await council.deliberate(QUESTION)
    return result.fan_out_s, [f"{a.archetype}: {a.error}" for a in result.answers if not a.ok]


async def _measure(url: str, key: str, settings: Settings, bench: CouncilTimings) -> None:
    async with GatewayClient(url, key, timeout_s=120) as client:
        served = await client.models()
        bench.archetypes = [n for n in served if n != settings.router] or served
        # Warm-up: LiteLLM builds each deployment's client on its first call.
        await _voices(client, bench.archetypes, len(bench.archetypes))
        for name in bench.archetypes:
            answer = await client.chat(name, [{"role": "user", "content": QUESTION}])
            if not answer.ok:
                bench.failures.append(f"{name}: {answer.error}")
            bench.singles_s[name] = answer.latency_s
        for count in VOICES:
            bench.voices_s[count], failed = await _voices(client, bench.archetypes, count)
            bench.failures += failed
        if settings.members:
            result = await Council(client, settings).deliberate(QUESTION)
            bench.council_s = result.total_s
            bench.router_s = float(result.routing.get("latency_s", 0.0))
            bench.path = result.path
            bench.failures += [f"{a.archetype}: {a.error}" for a in result.answers if not a.ok]
            bench.failures += [f"council: {note}" for note in result.notes]


_TOPICS = (
    "the KV cache of the 14B model and the GPU memory it needs",
    "a Helm chart value that turns the gateway on",
    "why the preflight refused a context length of 32768 tokens",
    "how ArgoCD syncs the release from Git",
    "the latency of the first token under load",
    "a Tekton pipeline that builds and signs the image",
)


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]


def _summary(values_s: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "p50": round(_percentile(ms, 0.50), 3),
        "p95": round(_percentile(ms, 0.95), 3),
        "mean": round(statistics.fmean(ms), 3),
    }


async def measure_memory(
    memory: archon_memory.Memory,
    embedder: archon_memory.Embedder,
    rounds: int,
    voices: int,
) -> dict[str, Any]:
    """Upsert and recall latency per council round, as the engine uses the memory: each round
    every voice stores its answer (one batch), then the round's question is recalled for every
    voice, filtered to that voice's archetype, concurrently. Also times the embedding of the
    round's answers alone, so the store's share can be told from the embedder's. Uses a session
    of its own: nobody else recalls it."""
    if rounds < 1 or voices < 1:
        raise ValueError("rounds and voices must be at least 1")
    session = f"bench-{uuid.uuid4().hex}"
    upsert_s: list[float] = []
    recall_s: list[float] = []
    embed_s: list[float] = []
    recalled = 0
    # A model loads on its first call (about a second for the static one): once, not per round.
    await embedder.embed(["warm-up"])
    for r in range(rounds):
        answers = [
            archon_memory.MemoryRecord(
                text=f"Round {r}, voice {v}: on {_TOPICS[(r + v) % len(_TOPICS)]}, "
                f"the answer is option {r * voices + v}.",
                archetype=f"voice-{v}",
                round=r,
                session=session,
            )
            for v in range(voices)
        ]
        started = time.perf_counter()
        await embedder.embed([a.text for a in answers])
        embed_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        await memory.remember(answers)
        upsert_s.append(time.perf_counter() - started)
        # The round number keeps every question new, so no round reuses an earlier embedding.
        question = f"Round {r + 1}: what did we say about {_TOPICS[(r + 1) % len(_TOPICS)]}?"
        started = time.perf_counter()
        found = await asyncio.gather(
            *(
                memory.recall(question, session=session, archetype=f"voice-{v}", k=3)
                for v in range(voices)
            )
        )
        recall_s.append(time.perf_counter() - started)
        recalled += sum(len(f) for f in found)
    return {
        "rounds": rounds,
        "voices": voices,
        "points": rounds * voices,
        "recalled": recalled,
        "embed_ms": _summary(embed_s),
        "upsert_ms": _summary(upsert_s),
        "recall_ms": _summary(recall_s),
    }


async def _memory(directory: Path, voices: int) -> dict[str, Any]:
    from archon.council.memory import QdrantClientMemory, StaticEmbedder

    embedder = StaticEmbedder()
    memory = QdrantClientMemory(embedder, path=directory)
    try:
        figures = await measure_memory(memory, embedder, MEMORY_ROUNDS, voices)
    finally:
        await memory.close()
    return {"store": "qdrant-client local mode + static embedding model", **figures}


def measure(values: Path | None = None) -> CouncilTimings:
    values = values or profiles_dir() / "council.yaml"
    settings = _settings(values)
    bench = CouncilTimings()

    def simulation(model: str) -> SimulationConfig:
        speedup = ROUTER_SPEEDUP if model.endswith("0.5b") else 1.0
        return SimulationConfig(
            model=model,
            first_token_latency_s=FIRST_TOKEN_S / speedup,
            token_latency_s=TOKEN_S / speedup,
            fill_replies=True,
        )

    with tempfile.TemporaryDirectory(prefix="archon-bench-council-") as tmp:
        start = time.perf_counter()
        with local_stack([values], Path(tmp) / "gateway", simulation=simulation) as stack:
            bench.gateway_start_s = time.perf_counter() - start
            asyncio.run(_measure(stack.url, stack.master_key, settings, bench))
        bench.memory = asyncio.run(_memory(Path(tmp) / "memory", max(VOICES)))
    return bench


class CouncilBenchmark:
    name = "council"
    help = (
        "the council through the real gateway over the simulation: "
        f"{' and '.join(map(str, VOICES))} voices (target <= {TARGET_RATIO}x the slowest single "
        # %% : argparse formats help strings with %.
        f"call), router share (target < {TARGET_ROUTER_SHARE * 100:.0f} %%), memory latency per "
        "round"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "-f", "--values", type=Path, help="council values (default: values/council.yaml)"
        )

    def run(self, args: argparse.Namespace) -> BenchResult:
        bench = measure(args.values)
        lines = [
            f"gateway: real LiteLLM proxy on loopback (started in {bench.gateway_start_s:.1f} s); "
            f"simulated 14B: first token {FIRST_TOKEN_S:.2f} s, {TOKEN_S * 1000:.1f} ms per token"
        ]
        lines += [f"  single {name:<10} {s:.3f} s" for name, s in bench.singles_s.items()]
        lines.append(f"slowest single call:            {bench.slowest_single_s:.3f} s")
        lines += [
            f"{count:>2} concurrent voices:           {seconds:.3f} s ({bench.ratio(count):.2f}x)"
            for count, seconds in bench.voices_s.items()
        ]
        if bench.council_s:
            lines += [
                f"whole council call:             {bench.council_s:.3f} s "
                f"({' -> '.join(bench.path)})",
                f"router pass:                    {bench.router_s:.3f} s "
                f"({bench.router_share:.1%} of the call)",
            ]
        memory = bench.memory
        if memory:
            upsert, recall, embed = memory["upsert_ms"], memory["recall_ms"], memory["embed_ms"]
            lines.append(
                f"memory ({memory['store']}), {memory['voices']} voices x {memory['rounds']} "
                f"rounds, per round: upsert p50 {upsert['p50']:.1f} ms p95 {upsert['p95']:.1f} "
                f"ms; recall p50 {recall['p50']:.1f} ms p95 {recall['p95']:.1f} ms (embedding "
                f"alone p50 {embed['p50']:.1f} ms)"
            )
        lines += [f"FAILED: {failure}" for failure in bench.failures]
        return BenchResult(
            name=self.name,
            target=(
                f"{' and '.join(map(str, VOICES))} voices <= {TARGET_RATIO}x the slowest single "
                f"call, router < {TARGET_ROUTER_SHARE:.0%} of a council call, no failures"
            ),
            met=bench.meets_target,
            figures=bench.as_dict(),
            lines=lines,
        )


BENCHMARK = CouncilBenchmark()
