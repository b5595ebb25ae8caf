"""What `archon council` prints: progress and latency on stderr as they happen, the answers on
stdout. Streamed pieces are shown live only for passes that run alone (aggregate, revision):
six interleaved streams would be unreadable, so the fan-out shows first-token times instead."""

from __future__ import annotations

import sys
from typing import TextIO

from archon.council import Answer, CouncilResult

LABELS = {
    "route": "routing",
    "aggregate": "aggregating",
    "veto": "reviewing",
    "revise": "revising",
    "rebirth": "rewriting (rebirth)",
    "gate": "checking the invariants",
}
# Passes whose text is the council's answer so far: streamed live with --stream.
LIVE = ("aggregate", "revise", "rebirth")


class Printer:
    def __init__(self, *, stream: bool, out: TextIO | None = None, err: TextIO | None = None):
        self.stream = stream
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._live: str | None = None  # the pass whose pieces are printed live
        self._width = 8

    def header(self, gateway: str, names: list[str], roles: dict[str, str]) -> None:
        self._width = max([8, *(len(n) for n in [*names, *roles.values()])])
        listed = ", ".join(f"{role}: {name}" for role, name in roles.items())
        extra = f" ({listed})" if listed else ""
        print(f"council: {len(names)} archetype(s) via {gateway}{extra}", file=self.err)

    def progress(self, event: str, name: str, answer: Answer | None) -> None:
        if event == "start":
            return
        if event in LABELS:
            print(f"  {name:<{self._width}} {LABELS[event]} ...", file=self.err, flush=True)
            if self.stream and event in LIVE:
                self._live = name
                print(f"== {LABELS[event]}: {name}", file=self.out, flush=True)
            return
        if answer is None:
            return
        if self._live == name:
            print(file=self.out, flush=True)
            self._live = None
        if answer.ok:
            first = f", first token {answer.first_token_s:.2f} s" if answer.first_token_s else ""
            print(
                f"  {name:<{self._width}} ok     {answer.latency_s:6.2f} s{first}",
                file=self.err,
                flush=True,
            )
        else:
            print(
                f"  {name:<{self._width}} FAILED {answer.latency_s:6.2f} s  {answer.error}",
                file=self.err,
                flush=True,
            )

    def delta(self, name: str, piece: str) -> None:
        if self._live == name:
            self.out.write(piece)
            self.out.flush()

    def result(self, result: CouncilResult) -> None:
        routing = result.routing
        if routing.get("router"):
            print(f"== routed by {routing['router']}: {', '.join(result.members)}", file=self.err)
        for answer in result.answered:
            print(f"== {answer.archetype} ({answer.latency_s:.2f} s)", file=self.out)
            print(answer.text.strip(), file=self.out)
        failed = [a for a in result.answers if not a.ok]
        if result.aggregate is not None and not self.stream:
            agg = result.aggregate
            status = f"{agg.latency_s:.2f} s" if agg.ok else f"FAILED: {agg.error}"
            print(f"== aggregate by {agg.archetype} ({status})", file=self.out)
            if agg.ok:
                print(agg.text.strip(), file=self.out)
        for review in result.reviews:
            verdict = "approved" if review.approved else "rejected: " + "; ".join(review.reasons)
            print(f"== review by {review.critic}: {verdict}", file=self.out)
        if result.gate is not None:
            gate = result.gate
            broken = f" ({'; '.join(gate.violations)})" if gate.violations else ""
            print(f"== gate by {gate.archetype}: {gate.verdict}{broken}", file=self.out)
        final = result.final
        rewritten = final is not None and result.rewrites and final is result.rewrites[-1]
        if final is not None and rewritten and not self.stream:
            print(f"== final, rewritten by {final.archetype}", file=self.out)
            print(final.text.strip(), file=self.out)
        if result.path:
            print(f"path: {' -> '.join(result.path)}", file=self.err)
        memory = result.memory
        if memory and "error" not in memory:
            recalled = sum(memory.get("recalled", {}).values())
            print(
                f"memory: {recalled} recalled, {memory.get('stored', 0)} stored "
                f"(session {result.session})",
                file=self.err,
            )
        for note in result.notes:
            print(f"note: {note}", file=self.err)
        summary = (
            f"council: {len(result.answered)}/{len(result.answers)} answered, fan-out "
            f"{result.fan_out_s:.2f} s, total {result.total_s:.2f} s"
        )
        if failed:
            summary += "; failed: " + ", ".join(f"{a.archetype} ({a.error})" for a in failed)
        print(summary, file=self.err)
        if not result.answered:
            print("council: no archetype answered", file=self.err)
