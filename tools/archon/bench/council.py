"""`archon bench council`: what the toolkit and the gateway add to a council's fan-out.

Every simulated model answers after the same fixed latency, so a perfectly concurrent council of
N archetypes takes as long as its slowest single call. Target: the whole fan-out of the six seed
archetypes (values/council.yaml) takes <= 1.2x the slowest single archetype call, both measured
through the real gateway in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archon.bench.base import BenchResult
from archon.council.client import GatewayClient
from archon.council.run import fan_out
from archon.gateway.local import local_stack
from archon.paths import profiles_dir
from archon.simulation import SimulationConfig

TARGET_RATIO = 1.2
LATENCY_S = 1.0  # simulated time to the first token of every answer
TOKEN_LATENCY_S = 0.005
QUESTION = "Review this function for bugs: def mean(xs): return sum(xs) / len(xs)"


@dataclass
class CouncilTimings:
    archetypes: list[str]
    singles_s: dict[str, float] = field(default_factory=dict)
    council_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    gateway_start_s: float = 0.0

    @property
    def slowest_single_s(self) -> float:
        return max(self.singles_s.values(), default=0.0)

    @property
    def ratio(self) -> float:
        return self.council_s / self.slowest_single_s if self.slowest_single_s else float("inf")

    @property
    def meets_target(self) -> bool:
        return not self.failures and self.ratio <= TARGET_RATIO

    def as_dict(self) -> dict[str, Any]:
        return {
            "archetypes": self.archetypes,
            "simulated_latency_s": LATENCY_S,
            "singles_s": {k: round(v, 3) for k, v in self.singles_s.items()},
            "slowest_single_s": round(self.slowest_single_s, 3),
            "council_s": round(self.council_s, 3),
            "ratio": round(self.ratio, 3),
            "target_ratio": TARGET_RATIO,
            "gateway_start_s": round(self.gateway_start_s, 2),
            "failures": self.failures,
            "meets_target": self.meets_target,
        }


async def _measure(url: str, key: str, bench: CouncilTimings) -> None:
    async with GatewayClient(url, key, timeout_s=60) as client:
        bench.archetypes = await client.models()
        # Warm-up: LiteLLM builds each deployment's client on its first call.
        await fan_out(client, "warm up", bench.archetypes)
        for name in bench.archetypes:
            answer = await client.chat(name, [{"role": "user", "content": QUESTION}])
            if not answer.ok:
                bench.failures.append(f"{name}: {answer.error}")
            bench.singles_s[name] = answer.latency_s
        start = time.perf_counter()
        answers = await fan_out(client, QUESTION, bench.archetypes)
        bench.council_s = time.perf_counter() - start
        bench.failures += [f"{a.archetype}: {a.error}" for a in answers if not a.ok]


def measure(values: Path | None = None) -> CouncilTimings:
    values = values or profiles_dir() / "council.yaml"
    bench = CouncilTimings(archetypes=[])

    def simulation(model: str) -> SimulationConfig:
        return SimulationConfig(
            model=model, first_token_latency_s=LATENCY_S, token_latency_s=TOKEN_LATENCY_S
        )

    with tempfile.TemporaryDirectory(prefix="archon-bench-council-") as tmp:
        start = time.perf_counter()
        with local_stack([values], Path(tmp), simulation=simulation) as stack:
            bench.gateway_start_s = time.perf_counter() - start
            asyncio.run(_measure(stack.url, stack.master_key, bench))
    return bench


class CouncilBenchmark:
    name = "council"
    help = (
        "6-archetype council through the real gateway over the simulation "
        f"(target: <= {TARGET_RATIO}x the slowest single call)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "-f", "--values", type=Path, help="archetype values (default: values/council.yaml)"
        )

    def run(self, args: argparse.Namespace) -> BenchResult:
        bench = measure(args.values)
        lines = [
            f"gateway: real LiteLLM proxy on loopback (started in {bench.gateway_start_s:.1f} s); "
            f"simulated model latency {LATENCY_S:.2f} s"
        ]
        lines += [f"  single {name:<10} {s:.3f} s" for name, s in bench.singles_s.items()]
        lines += [
            f"slowest single call:            {bench.slowest_single_s:.3f} s",
            f"council of {len(bench.archetypes)} (concurrent fan-out): {bench.council_s:.3f} s",
            *(f"FAILED: {failure}" for failure in bench.failures),
            f"ratio: {bench.ratio:.2f}x",
        ]
        return BenchResult(
            name=self.name,
            target=f"council <= {TARGET_RATIO}x the slowest single call, no failures",
            met=bench.meets_target,
            figures=bench.as_dict(),
            lines=lines,
        )


BENCHMARK = CouncilBenchmark()
