"""`archon bench gateway`: the real LiteLLM gateway under many concurrent streamed completions.

N clients each stream one chat completion after another for the given duration, first straight
to the vLLM simulation (the baseline), then through the gateway the chart configures. Every
request carries a nonce of its own in every word of its prompt and the simulation echoes the
prompt, so each stream's text is known in advance: a stream that ends early is lost, one holding
another request's words is mixed up. Target: no errors, no lost and no mixed-up streams through
the gateway; the added latency (gateway minus direct, p50 and p99, to the first token and to the
end of the stream) is reported, not judged, as it depends on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from archon.arguments import positive_count, positive_number
from archon.bench.base import BenchResult
from archon.simulation.server import reply_words

STREAMS = 200
DURATION_S = 60.0
BASELINE_S = 10.0  # the direct baseline settles much sooner than the gateway run needs
TOKENS = 24  # words per reply, nonce words included
FIRST_TOKEN_S = 0.2  # simulated time to the first token
TOKEN_S = 0.05  # simulated time between tokens (~20 tokens/s per stream, a busy consumer GPU)
REQUEST_TIMEOUT_S = 60.0
KEPT_ERRORS = 5  # distinct error messages kept for the report
PREFIX_WORDS = len(reply_words([], 99))  # the simulation's own words before it echoes the prompt


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(q / 100 * len(ranked) + 0.5) - 1))]


@dataclass
class Phase:
    """One load run: what completed, how long it took, and what went wrong."""

    name: str
    streams: int
    duration_s: float = 0.0
    requests: int = 0
    ttft_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    errors: int = 0  # HTTP errors and exceptions (refused, reset, timed out)
    lost: int = 0  # streams that ended before their last word or without [DONE]
    mixed: int = 0  # streams holding words of another request
    samples: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return self.errors + self.lost + self.mixed

    def note(self, kind: str, message: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        line = f"{kind}: {message}"[:200]
        if len(self.samples) < KEPT_ERRORS and line not in self.samples:
            self.samples.append(line)

    def as_dict(self) -> dict[str, Any]:
        def ms(values: list[float], q: float) -> float:
            return round(_percentile(values, q) * 1000, 1)

        return {
            "streams": self.streams,
            "duration_s": round(self.duration_s, 1),
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.duration_s, 1) if self.duration_s else 0,
            "ttft_p50_ms": ms(self.ttft_s, 50),
            "ttft_p99_ms": ms(self.ttft_s, 99),
            "total_p50_ms": ms(self.total_s, 50),
            "total_p99_ms": ms(self.total_s, 99),
            "errors": self.errors,
            "lost": self.lost,
            "mixed": self.mixed,
            "samples": self.samples,
        }


def request_body(model: str, nonce: str, tokens: int) -> tuple[dict[str, Any], str]:
    """A streamed chat request whose every prompt word carries `nonce`, and the exact text the
    simulation streams back for it."""
    words = [f"{nonce}.{k}" for k in range(max(1, tokens - PREFIX_WORDS))]
    messages = [{"role": "user", "content": " ".join(words)}]
    body = {"model": model, "messages": messages, "stream": True, "max_tokens": tokens}
    return body, " ".join(reply_words(messages, tokens))


def stream_text(lines: list[str]) -> tuple[str, bool]:
    """The content a stream's `data:` lines carry, and whether it ended with `[DONE]`."""
    text: list[str] = []
    done = False
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        for choice in json.loads(data).get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                text.append(content)
    return "".join(text), done


def judge(phase: Phase, nonce: str, expected: str, text: str, done: bool) -> bool:
    """Classify one finished stream into `phase`; True when it is exactly what was asked for."""
    if text == expected and done:
        return True
    foreign = [w for w in text.split() if "." in w and w.rsplit(".", 1)[0] != nonce]
    if foreign and any(w.rsplit(".", 1)[1].isdigit() for w in foreign):
        phase.note("mixed", f"stream {nonce} carried {foreign[0]!r}")
    elif expected.startswith(text) or not done:
        phase.note("lost", f"stream {nonce} ended after {len(text.split())} words, done={done}")
    else:
        phase.note("mixed", f"stream {nonce} read {text[:80]!r}")
    return False


async def _one(
    client: httpx.AsyncClient, phase: Phase, url: str, model: str, nonce: str, tokens: int
) -> None:
    body, expected = request_body(model, nonce, tokens)
    start = time.perf_counter()
    first: float | None = None
    lines: list[str] = []
    try:
        async with client.stream("POST", url, json=body) as reply:
            if reply.status_code != 200:
                await reply.aread()
                phase.note("errors", f"HTTP {reply.status_code}: {reply.text[:120]}")
                return
            async for line in reply.aiter_lines():
                lines.append(line)
                if first is None and stream_text([line])[0]:
                    first = time.perf_counter()
        text, done = stream_text(lines)
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        phase.note("errors", f"{type(exc).__name__}: {exc}")
        return
    end = time.perf_counter()
    if judge(phase, nonce, expected, text, done):
        phase.requests += 1
        phase.ttft_s.append((first or end) - start)
        phase.total_s.append(end - start)


async def run_load(
    base_url: str,
    models: list[str],
    *,
    streams: int,
    duration_s: float,
    tokens: int = TOKENS,
    api_key: str | None = None,
    name: str = "load",
    ramp_s: float = 0.0,
) -> Phase:
    """`streams` clients, each streaming one request after another until `duration_s` is over
    (at least one each; a request under way then finishes: none is cut off). Client i asks
    models[i % len(models)] and starts after i/streams of `ramp_s`: a load test's ramp-up, so
    the clients do not connect in one burst and then stay in step."""
    phase = Phase(name=name, streams=streams)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=streams + 8, max_keepalive_connections=streams + 8)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=REQUEST_TIMEOUT_S)
    url = base_url.rstrip("/") + "/chat/completions"
    run = secrets.token_hex(3)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as client:
        start = time.perf_counter()
        deadline = start + duration_s

        async def client_loop(i: int) -> None:
            await asyncio.sleep(i * ramp_s / streams)
            n = 0
            while n == 0 or time.perf_counter() < deadline:
                await _one(client, phase, url, models[i % len(models)], f"{run}-{i}-{n}", tokens)
                n += 1

        bound_s = ramp_s + duration_s + 2 * REQUEST_TIMEOUT_S
        try:
            await asyncio.wait_for(
                asyncio.gather(*(client_loop(i) for i in range(streams))), timeout=bound_s
            )
        except TimeoutError:
            phase.note("errors", f"clients still waiting {bound_s:.0f} s after the start")
        phase.duration_s = time.perf_counter() - start
    return phase


@dataclass
class GatewayLoad:
    direct: Phase
    gateway: Phase
    models: list[str]
    gateway_start_s: float = 0.0

    @property
    def meets_target(self) -> bool:
        return self.gateway.failures == 0 and self.gateway.requests >= self.gateway.streams

    def added_ms(self, series: str, q: float) -> float:
        via: list[float] = getattr(self.gateway, series)
        direct: list[float] = getattr(self.direct, series)
        return round((_percentile(via, q) - _percentile(direct, q)) * 1000, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "gateway_start_s": round(self.gateway_start_s, 1),
            "direct": self.direct.as_dict(),
            "gateway": self.gateway.as_dict(),
            "added_ttft_p50_ms": self.added_ms("ttft_s", 50),
            "added_ttft_p99_ms": self.added_ms("ttft_s", 99),
            "added_total_p50_ms": self.added_ms("total_s", 50),
            "added_total_p99_ms": self.added_ms("total_s", 99),
            "meets_target": self.meets_target,
        }


def measure(
    *,
    streams: int = STREAMS,
    duration_s: float = DURATION_S,
    baseline_s: float = BASELINE_S,
    tokens: int = TOKENS,
    first_token_s: float = FIRST_TOKEN_S,
    token_s: float = TOKEN_S,
    values: Path | None = None,
    out: TextIO | None = None,
) -> GatewayLoad:
    """Start the simulations and the real gateway (the chart's config for `values`), warm the
    gateway up, then run the direct baseline and the gateway run with the same load; progress
    on `out`."""

    from archon.gateway.config import ARCHETYPES, upstream_models
    from archon.gateway.local import local_stack
    from archon.paths import profiles_dir
    from archon.simulation import SimulationConfig

    def say(text: str) -> None:
        if out is not None:
            print(text, file=out, flush=True)

    values = values or profiles_dir() / "council.yaml"

    def simulation(model: str) -> SimulationConfig:
        return SimulationConfig(
            model=model, first_token_latency_s=first_token_s, token_latency_s=token_s
        )

    with tempfile.TemporaryDirectory(prefix="archon-bench-gateway-") as tmp:
        start = time.perf_counter()
        say("starting the vLLM simulations and the LiteLLM gateway on loopback")
        with local_stack([values], Path(tmp), simulation=simulation) as stack:
            started = time.perf_counter() - start
            routes = upstream_models(yaml.safe_load(stack.config_path.read_text()))
            table = stack.config_path.with_name(ARCHETYPES)
            shaped = json.loads(table.read_text()) if table.is_file() else {}
            # The base model and the prompt archetypes on it: plain routing and the hook. Those
            # with guided decoding answer JSON, not the echo, so they are left out.
            served = Counter(routes.values()).most_common(1)[0][0]
            models = sorted(
                name
                for name, model in routes.items()
                if model == served and not (shaped.get(name) or {}).get("guidedDecoding")
            )
            direct_url = stack.simulations[served].url + "/v1"
            gateway_url = stack.url + "/v1"

            ramp_s = first_token_s + tokens * token_s  # one stream's length
            baseline = min(baseline_s, duration_s)

            async def both() -> tuple[Phase, Phase]:
                # LiteLLM builds each deployment's client on its first call: not measured.
                await run_load(
                    gateway_url, models, streams=len(models), duration_s=0.0,
                    tokens=tokens, api_key=stack.master_key,
                )  # fmt: skip
                say(f"{streams} streams straight to the simulation for {baseline:.0f} s")
                direct = await run_load(
                    direct_url, [served], streams=streams, duration_s=baseline,
                    tokens=tokens, name="direct", ramp_s=ramp_s,
                )  # fmt: skip
                say(f"{streams} streams through the gateway for {duration_s:.0f} s")
                via = await run_load(
                    gateway_url, models, streams=streams, duration_s=duration_s, tokens=tokens,
                    api_key=stack.master_key, name="gateway", ramp_s=ramp_s,
                )  # fmt: skip
                return direct, via

            direct, via = asyncio.run(both())
    return GatewayLoad(direct=direct, gateway=via, models=models, gateway_start_s=started)


def _tokens(text: str) -> int:
    value = positive_count(text)
    if value <= PREFIX_WORDS:
        raise argparse.ArgumentTypeError(
            f"{value} leaves no room for the request's own words after the simulation's "
            f"{PREFIX_WORDS}: use at least {PREFIX_WORDS + 1}"
        )
    return value


class GatewayBenchmark:
    name = "gateway"
    help = (
        f"{STREAMS} concurrent streamed completions through the real gateway over the simulation "
        "(target: 0 errors, no lost or mixed-up streams; reports added p50/p99 latency)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--streams", type=positive_count, default=STREAMS, help="concurrent streams"
        )
        parser.add_argument(
            "--duration",
            type=positive_number,
            default=DURATION_S,
            help="seconds of load through the gateway",
        )
        parser.add_argument(
            "--baseline",
            type=positive_number,
            default=BASELINE_S,
            help="seconds of the same load straight to the simulation",
        )
        parser.add_argument(
            "--tokens", type=_tokens, default=TOKENS, help="words streamed per reply"
        )
        parser.add_argument(
            "-f", "--values", type=Path, help="archetype values (default: values/council.yaml)"
        )

    def run(self, args: argparse.Namespace) -> BenchResult:
        load = measure(
            streams=args.streams,
            duration_s=args.duration,
            baseline_s=args.baseline,
            tokens=args.tokens,
            values=args.values,
            out=sys.stderr,
        )
        lines = [
            f"gateway: real LiteLLM proxy on loopback (started in {load.gateway_start_s:.1f} s), "
            f"models {', '.join(load.models)}; simulated {FIRST_TOKEN_S * 1000:.0f} ms to the "
            f"first token, {TOKEN_S * 1000:.0f} ms between tokens, {args.tokens} tokens",
        ]
        for phase in (load.direct, load.gateway):
            d = phase.as_dict()
            lines += [
                f"{phase.name:<8} {phase.streams} streams for {d['duration_s']} s: "
                f"{phase.requests} streams complete ({d['requests_per_s']}/s), "
                f"first token p50 {d['ttft_p50_ms']} ms p99 {d['ttft_p99_ms']} ms, "
                f"whole stream p50 {d['total_p50_ms']} ms p99 {d['total_p99_ms']} ms; "
                f"errors {phase.errors}, lost {phase.lost}, mixed up {phase.mixed}",
                *(f"  {sample}" for sample in phase.samples),
            ]
        if load.direct.failures:
            lines.append(
                f"the baseline itself failed {load.direct.failures} time(s): the simulation "
                "could not take every connection, so the added latency is understated"
            )
        lines.append(
            "added by the gateway: first token "
            f"p50 {load.added_ms('ttft_s', 50)} ms, p99 {load.added_ms('ttft_s', 99)} ms; "
            f"whole stream p50 {load.added_ms('total_s', 50)} ms, "
            f"p99 {load.added_ms('total_s', 99)} ms"
        )
        return BenchResult(
            name=self.name,
            target=f"{args.streams} concurrent streams through the gateway, each complete at "
            "least once: 0 errors, no lost or mixed-up streams",
            met=load.meets_target,
            figures=load.as_dict(),
            lines=lines,
        )


BENCHMARK = GatewayBenchmark()
