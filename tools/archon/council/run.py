"""The council run: concurrent fan-out, aggregation, shadow veto (send back at most once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from archon.council import prompts
from archon.council.client import Answer, GatewayClient, OnDelta

# (event, archetype, answer or None): "start", "done" (answer.ok tells which), "aggregate",
# "veto", "revise".
Progress = Callable[[str, str, Answer | None], None]


def _quiet(event: str, archetype: str, answer: Answer | None) -> None:
    return None


@dataclass
class VetoResult:
    critic: str
    review: Answer
    approved: bool
    reasons: str = ""
    revised: Answer | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "critic": self.critic,
            "approved": self.approved,
            "reasons": self.reasons,
            "review": self.review.as_dict(),
            "revised": None if self.revised is None else self.revised.as_dict(),
        }


@dataclass
class CouncilResult:
    question: str
    answers: list[Answer]
    fan_out_s: float = 0.0
    aggregate: Answer | None = None
    veto: VetoResult | None = None
    total_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def answered(self) -> list[Answer]:
        return [a for a in self.answers if a.ok]

    @property
    def final(self) -> Answer | None:
        """What the council says: the revised aggregate, the aggregate, or a lone answer."""
        if self.veto is not None and self.veto.revised is not None and self.veto.revised.ok:
            return self.veto.revised
        if self.aggregate is not None and self.aggregate.ok:
            return self.aggregate
        answered = self.answered
        return answered[0] if len(answered) == 1 else None

    def as_dict(self) -> dict[str, Any]:
        final = self.final
        return {
            "question": self.question,
            "answers": [a.as_dict() for a in self.answers],
            "fan_out_s": round(self.fan_out_s, 3),
            "aggregate": None if self.aggregate is None else self.aggregate.as_dict(),
            "veto": None if self.veto is None else self.veto.as_dict(),
            "final": None if final is None else final.text,
            "total_s": round(self.total_s, 3),
            "notes": self.notes,
        }


async def fan_out(
    client: GatewayClient,
    question: str,
    archetypes: Sequence[str],
    *,
    stream: bool = False,
    progress: Progress = _quiet,
    on_delta: OnDelta | None = None,
) -> list[Answer]:
    """Every archetype answers the question at the same time; failures come back as answers."""

    async def one(name: str) -> Answer:
        progress("start", name, None)
        answer = await client.chat(
            name, [{"role": "user", "content": question}], stream=stream, on_delta=on_delta
        )
        progress("done", name, answer)
        return answer

    return list(await asyncio.gather(*(one(n) for n in archetypes)))


async def run_council(
    client: GatewayClient,
    question: str,
    archetypes: Sequence[str],
    *,
    aggregate: str | None = None,
    veto: str | None = None,
    stream: bool = False,
    progress: Progress = _quiet,
    on_delta: OnDelta | None = None,
    context_tokens: int = prompts.CONTEXT_TOKENS,
) -> CouncilResult:
    """Fan out, aggregate, veto. `context_tokens` is the aggregator's context: each answer it
    reads is cut to a share of it (with a note in the prompt and in `notes`)."""
    start = time.perf_counter()
    answers = await fan_out(client, question, archetypes, stream=stream, progress=progress)
    result = CouncilResult(question, answers, fan_out_s=time.perf_counter() - start)
    answered = result.answered
    if aggregate and len(answered) > 1:
        progress("aggregate", aggregate, None)
        result.notes += prompts.fit_to_context(question, answered, context_tokens)[1]
        result.aggregate = await client.chat(
            aggregate,
            prompts.aggregate_messages(question, answered, context_tokens),
            stream=stream,
            on_delta=on_delta,
        )
        progress("done", aggregate, result.aggregate)
    elif aggregate and answered:
        result.notes.append("one archetype answered: nothing to aggregate")
    if veto and result.final is not None:
        result.veto = await _shadow_veto(
            client, question, result.final, veto, aggregate, stream, progress, on_delta
        )
    result.total_s = time.perf_counter() - start
    return result


async def _shadow_veto(
    client: GatewayClient,
    question: str,
    proposal: Answer,
    critic: str,
    aggregator: str | None,
    stream: bool,
    progress: Progress,
    on_delta: OnDelta | None,
) -> VetoResult:
    """The critic reviews the proposal; a rejection sends it back to its author once."""
    progress("veto", critic, None)
    review = await client.chat(critic, prompts.veto_messages(question, proposal))
    progress("done", critic, review)
    if not review.ok:
        return VetoResult(critic, review, approved=True, reasons="the critic did not answer")
    approved, reasons = prompts.verdict(review.text)
    outcome = VetoResult(critic, review, approved, reasons)
    if not approved:
        author = aggregator or proposal.archetype
        progress("revise", author, None)
        outcome.revised = await client.chat(
            author,
            prompts.revise_messages(question, proposal, reasons),
            stream=stream,
            on_delta=on_delta,
        )
        progress("done", author, outcome.revised)
    return outcome
