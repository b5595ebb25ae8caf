"""The council's deliberation: router, fan-out, aggregation, shadow veto with Phoenix, Ma'at's
gate, and the resonance memory.

One source for both places it runs. In the cluster the chart's gateway ConfigMap carries it and
LiteLLM serves it as model `council` (`litellm_settings.custom_provider_map`): the deliberation then
runs inside the gateway pod and calls each archetype through the proxy's own loopback port, so the
archetype hook adds system prompts and guided decoding exactly as for any client. On a laptop
`archon council` runs the same code against a gateway URL. It needs the standard library and httpx
only (the LiteLLM image has no archon package), plus its siblings beside it: `archon_memory`,
`archon_council_client` (the gateway client) and `archon_council_prompts`.

Settings come from the JSON the chart renders next to LiteLLM's config (ARCHON_COUNCIL_FILE), the
shape of the chart's `council:` values.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import archon_memory
from archon_council_client import (
    Answer,
    AuthRefused,
    CouncilError,
    GatewayClient,
    GatewayUnreachable,
    Messages,
    OnDelta,
)
from archon_council_prompts import (
    GATE_SCHEMA,
    GATE_SCHEMA_NAME,
    REVIEW_SCHEMA,
    REVIEW_SCHEMA_NAME,
    ROUTE_SCHEMA_NAME,
    aggregate_messages,
    fit_to_context,
    gate_messages,
    json_schema_format,
    member_messages,
    parse_route,
    parse_verdict,
    rebirth_messages,
    review_messages,
    revise_messages,
    route_messages,
    route_schema,
    user_message,
)

SETTINGS_ENV = "ARCHON_COUNCIL_FILE"
DEFAULT_FILE = "council.json"
# Where the handler reaches the proxy it runs in: the gateway container's own port.
GATEWAY_ENV = "ARCHON_COUNCIL_GATEWAY_URL"
DEFAULT_GATEWAY = "http://127.0.0.1:4000"
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
QDRANT_KEY_ENV = "ARCHON_QDRANT_API_KEY"
DEFAULT_SESSION = "default"

# (event, archetype, answer or None): "start", "done", "route", "aggregate", "veto", "revise",
# "rebirth", "gate".
Progress = Callable[[str, str, "Answer | None"], None]


def _quiet(event: str, archetype: str, answer: Answer | None) -> None:
    return None


class SettingsError(CouncilError, ValueError):
    """council.json (or the values it comes from) is not what the council needs."""


# --- settings ------------------------------------------------------------------------------


def _get(data: dict[str, Any], path: str, kind: type, default: Any) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    if node is None:
        return default
    if kind is float and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
        raise SettingsError(
            f"council.{path}: expected {kind.__name__}, got {type(node).__name__} {node!r}"[:200]
        )
    return node


def _names(data: dict[str, Any], path: str) -> tuple[str, ...]:
    raw = _get(data, path, list, [])
    if not all(isinstance(n, str) for n in raw):
        raise SettingsError(f"council.{path}: expected a list of names")
    return tuple(raw)


@dataclass(frozen=True)
class Settings:
    """Who does what; "" turns a stage off."""

    members: tuple[str, ...] = ()
    descriptions: dict[str, str] = field(default_factory=dict)
    router: str = ""
    min_members: int = 3
    max_members: int = 5
    aggregator: str = ""
    gate: str = ""
    invariants: tuple[str, ...] = ()
    critic: str = ""
    escalate_to: str = ""
    max_depth: int = 3
    memory: bool = False
    top_k: int = 3
    # Cosine similarity a memory needs to be recalled: unrelated memories stay out of prompts.
    min_score: float = 0.5
    collection: str = "archon-council"
    embedding_model: str = ""
    qdrant_url: str = ""
    timeout_s: float = 900.0
    # The aggregator's context: each answer it reads is cut to a share of it.
    context_tokens: int = 6144

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        if not isinstance(data, dict):
            raise SettingsError("council settings: expected a JSON object")
        descriptions = _get(data, "descriptions", dict, {})
        settings = cls(
            members=_names(data, "members"),
            descriptions={str(k): str(v) for k, v in descriptions.items()},
            router=_get(data, "router.archetype", str, ""),
            min_members=_get(data, "router.minMembers", int, 3),
            max_members=_get(data, "router.maxMembers", int, 5),
            aggregator=_get(data, "aggregator", str, ""),
            gate=_get(data, "gate.archetype", str, ""),
            invariants=_names(data, "gate.invariants"),
            critic=_get(data, "veto.critic", str, ""),
            escalate_to=_get(data, "veto.escalateTo", str, ""),
            max_depth=_get(data, "veto.maxDepth", int, 3),
            memory=_get(data, "memory.enabled", bool, False),
            top_k=_get(data, "memory.topK", int, 3),
            min_score=_get(data, "memory.minScore", float, 0.5),
            collection=_get(data, "memory.collection", str, "archon-council"),
            embedding_model=_get(data, "memory.embeddingModel", str, ""),
            qdrant_url=_get(data, "memory.url", str, ""),
            timeout_s=_get(data, "timeoutSeconds", float, 900.0),
            context_tokens=_get(data, "contextTokens", int, 6144),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.min_members < 1 or self.max_members < self.min_members:
            raise SettingsError(
                f"council.router: minMembers {self.min_members} and maxMembers "
                f"{self.max_members} need 1 <= minMembers <= maxMembers"
            )
        if self.max_depth < 1:
            raise SettingsError(f"council.veto.maxDepth: {self.max_depth} must be >= 1")
        if self.top_k < 1:
            raise SettingsError(f"council.memory.topK: {self.top_k} must be >= 1")
        if not self.timeout_s > 0:
            raise SettingsError(f"council.timeoutSeconds: {self.timeout_s} must be > 0")

    def roles(self) -> dict[str, str]:
        """Each stage that is on, and the archetype that plays it."""
        named = {
            "router": self.router,
            "aggregator": self.aggregator,
            "gate": self.gate,
            "critic": self.critic,
            "escalate_to": self.escalate_to,
        }
        return {role: name for role, name in named.items() if name}


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    file = Path(path or os.environ.get(SETTINGS_ENV) or Path(__file__).with_name(DEFAULT_FILE))
    try:
        return Settings.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{file}: {exc}") from exc


# --- the deliberation ------------------------------------------------------------------------


@dataclass
class Review:
    critic: str
    answer: Answer
    approved: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "critic": self.critic,
            "approved": self.approved,
            "reasons": self.reasons,
            "review": self.answer.as_dict(),
        }


@dataclass
class GateResult:
    archetype: str
    verdict: str  # "pass", "revised" (sent back once), or "unchecked" (the gate did not answer)
    violations: list[str] = field(default_factory=list)
    answer: Answer | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "archetype": self.archetype,
            "verdict": self.verdict,
            "violations": self.violations,
            "review": None if self.answer is None else self.answer.as_dict(),
        }


@dataclass
class CouncilResult:
    question: str
    session: str = DEFAULT_SESSION
    members: list[str] = field(default_factory=list)
    routing: dict[str, Any] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    aggregate: Answer | None = None
    reviews: list[Review] = field(default_factory=list)
    rewrites: list[Answer] = field(default_factory=list)  # revisions and rebirths, in order
    gate: GateResult | None = None
    path: list[str] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    fan_out_s: float = 0.0
    total_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    # The council's answer so far; each stage that improves it replaces it.
    final: Answer | None = None
    timed_out: bool = False

    @property
    def answered(self) -> list[Answer]:
        return [a for a in self.answers if a.ok]

    @property
    def final_text(self) -> str | None:
        return None if self.final is None else self.final.text

    def metadata(self) -> dict[str, Any]:
        """Everything but the final text: the gateway returns it beside the answer."""
        return {
            "session": self.session,
            "members": self.members,
            "routing": self.routing,
            "answers": [a.as_dict() for a in self.answers],
            "aggregate": None if self.aggregate is None else self.aggregate.as_dict(),
            "reviews": [r.as_dict() for r in self.reviews],
            "rewrites": [a.as_dict() for a in self.rewrites],
            "gate": None if self.gate is None else self.gate.as_dict(),
            "path": self.path,
            "memory": self.memory,
            "fan_out_s": round(self.fan_out_s, 3),
            "total_s": round(self.total_s, 3),
            "notes": self.notes,
        }

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question, **self.metadata(), "final": self.final_text}


def question_of(messages: Messages) -> str:
    """The last user turn's text (OpenAI content may be a list of parts)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(
                str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
            )
    return ""


class Council:
    """One deliberation per `deliberate` call; the client, memory and settings are shared."""

    def __init__(
        self,
        client: GatewayClient,
        settings: Settings,
        *,
        memory: archon_memory.Memory | None = None,
        progress: Progress = _quiet,
    ) -> None:
        self.client = client
        self.settings = settings
        self.memory = memory
        self.progress = progress

    async def _call(
        self,
        event: str,
        name: str,
        messages: Messages,
        *,
        stream: bool = False,
        on_delta: OnDelta | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Answer:
        self.progress(event, name, None)
        answer = await self.client.chat(
            name, messages, stream=stream, on_delta=on_delta, response_format=response_format
        )
        self.progress("done", name, answer)
        return answer

    async def deliberate(
        self,
        conversation: Messages | str,
        *,
        session: str = DEFAULT_SESSION,
        members: Sequence[str] | None = None,
        stream: bool = False,
        on_delta: OnDelta | None = None,
    ) -> CouncilResult:
        """Route, recall, fan out, aggregate, review, gate, remember. `members` overrides the
        settings' list (the CLI's --archetypes)."""
        if isinstance(conversation, str):
            conversation = user_message(conversation)
        question = question_of(conversation)
        if not question.strip():
            raise CouncilError("the council needs a question: the last user message is empty")
        candidates = list(members or self.settings.members)
        if not candidates:
            raise CouncilError("the council has no members: name the archetypes that answer")
        result = CouncilResult(question, session=session or DEFAULT_SESSION)
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                await self._run(result, conversation, candidates, stream, on_delta)
        except TimeoutError:
            # `final` holds the best answer so far: the stages keep it current.
            result.timed_out = True
            kept = (
                ""
                if result.final is None
                else f"; the answer so far stands ({result.final.archetype})"
            )
            result.notes.append(
                f"the council stopped at its {self.settings.timeout_s:g} s limit{kept}"
            )
            result.path.append("timeout")
        result.total_s = time.perf_counter() - start
        return result

    async def _run(
        self,
        result: CouncilResult,
        conversation: Messages,
        candidates: list[str],
        stream: bool,
        on_delta: OnDelta | None,
    ) -> None:
        s = self.settings
        question = result.question
        routed = asyncio.create_task(self._route(result, candidates))
        recalled = asyncio.create_task(self._recall(result, question, candidates))
        await routed
        memories = await recalled
        result.path.append(f"route: {', '.join(result.members)}")

        fan_start = time.perf_counter()

        async def one(name: str) -> Answer:
            messages = member_messages(conversation, memories.get(name, []))
            return await self._call("start", name, messages, stream=stream)

        result.answers = list(await asyncio.gather(*(one(n) for n in result.members)))
        result.fan_out_s = time.perf_counter() - fan_start
        answered = result.answered
        result.path.append(f"fan-out: {len(answered)}/{len(result.answers)} answered")
        if not answered:
            result.notes.append("no archetype answered")
            return
        result.final = answered[0]
        if s.aggregator and len(answered) > 1:
            result.notes += fit_to_context(question, answered, s.context_tokens)[1]
            aggregate = await self._call(
                "aggregate",
                s.aggregator,
                aggregate_messages(question, answered, s.context_tokens),
                stream=stream,
                on_delta=on_delta,
            )
            result.aggregate = aggregate
            if aggregate.ok:
                result.final = aggregate
                result.path.append(f"aggregate: {s.aggregator}")
            else:
                result.notes.append(f"the aggregator failed ({aggregate.error}): first answer kept")
        elif s.aggregator:
            result.notes.append("one archetype answered: nothing to aggregate")
        if s.critic:
            await self._cascade(result, stream, on_delta)
        if s.gate and s.invariants:
            await self._gate(result, stream, on_delta)
        elif s.gate:
            result.path.append("gate: skipped, no invariants")
        await self._remember(result)

    async def _route(self, result: CouncilResult, candidates: list[str]) -> None:
        s = self.settings
        low, high = min(s.min_members, len(candidates)), min(s.max_members, len(candidates))
        result.routing = {"router": s.router or None, "candidates": candidates}
        if not s.router or len(candidates) <= low:
            result.members = candidates
            result.routing["chosen"] = candidates
            return
        answer = await self._call(
            "route",
            s.router,
            route_messages(result.question, candidates, s.descriptions, low, high),
            response_format=json_schema_format(
                ROUTE_SCHEMA_NAME, route_schema(candidates, low, high)
            ),
        )
        result.routing["latency_s"] = round(answer.latency_s, 3)
        why: str | None
        if not answer.ok:
            chosen, why = candidates, f"the router failed ({answer.error})"
        else:
            chosen, why = parse_route(answer.text, candidates, low, high)
        result.members = chosen
        result.routing["chosen"] = chosen
        if why:
            result.routing["fallback"] = f"{why}: every member answers"
            result.notes.append(result.routing["fallback"])

    async def _recall(
        self, result: CouncilResult, question: str, candidates: list[str]
    ) -> dict[str, list[archon_memory.Recollection]]:
        """Per archetype, the session's memories that resonate with the question; recalled for
        every candidate while the router decides, so memory adds no time to a routed council."""
        s = self.settings
        if self.memory is None or not s.memory:
            return {}
        start = time.perf_counter()
        memory = self.memory

        async def one(name: str) -> list[archon_memory.Recollection]:
            return await memory.recall(
                question, session=result.session, archetype=name, k=s.top_k, min_score=s.min_score
            )

        try:
            found = await asyncio.gather(*(one(n) for n in candidates))
        except archon_memory.MemoryUnavailable as exc:
            result.memory["error"] = str(exc)
            result.notes.append(f"memory unavailable, answering without it: {exc}")
            return {}
        recalled = dict(zip(candidates, found, strict=True))
        result.memory["recall_s"] = round(time.perf_counter() - start, 4)
        result.memory["recalled"] = {n: len(m) for n, m in recalled.items() if m}
        return recalled

    async def _rewrite(
        self,
        result: CouncilResult,
        event: str,
        writer: str,
        messages: Messages,
        stream: bool,
        on_delta: OnDelta | None,
    ) -> bool:
        """One rewrite of the answer so far; it becomes the answer when it succeeds."""
        rewrite = await self._call(event, writer, messages, stream=stream, on_delta=on_delta)
        result.rewrites.append(rewrite)
        if not rewrite.ok:
            result.notes.append(f"{writer} could not rewrite ({rewrite.error})")
            result.path.append(f"{event}: {writer} failed")
            return False
        result.path.append(f"{event}: {writer}")
        result.final = rewrite
        return True

    async def _cascade(self, result: CouncilResult, stream: bool, on_delta: OnDelta | None) -> None:
        """The shadow veto: the critic reviews; the first rejection sends the answer back to its
        author, each later one hands it to the escalation archetype to rewrite from all the
        critiques. At most `max_depth` reviews."""
        s = self.settings
        question = result.question
        critiques: list[list[str]] = []
        for depth in range(1, s.max_depth + 1):
            proposal = result.final
            assert proposal is not None  # the fan-out set it
            answer = await self._call(
                "veto",
                s.critic,
                review_messages(question, proposal.text),
                response_format=json_schema_format(REVIEW_SCHEMA_NAME, REVIEW_SCHEMA),
            )
            if not answer.ok:
                result.notes.append(f"the critic {s.critic} did not answer ({answer.error})")
                result.path.append(f"review {depth}: no answer")
                return
            approved, reasons = parse_verdict(answer.text, "approve", "reject", "reasons")
            if approved is None:
                result.notes.append(f"the critic's reply had no verdict: {answer.text[:120]!r}")
                result.path.append(f"review {depth}: no verdict")
                return
            result.reviews.append(Review(s.critic, answer, approved, reasons))
            if approved:
                result.path.append(f"review {depth}: approved by {s.critic}")
                return
            result.path.append(f"review {depth}: rejected by {s.critic}")
            critiques.append(reasons)
            if depth == s.max_depth:
                result.notes.append(
                    f"{s.critic} still rejects after {depth} reviews: the last version stands"
                )
                return
            if len(critiques) == 1 or not s.escalate_to:
                event, writer = "revise", proposal.archetype
                messages = revise_messages(question, proposal.text, reasons, "a critic's reasons")
            else:
                event, writer = "rebirth", s.escalate_to
                messages = rebirth_messages(question, proposal.text, critiques)
            if not await self._rewrite(result, event, writer, messages, stream, on_delta):
                return

    async def _gate(self, result: CouncilResult, stream: bool, on_delta: OnDelta | None) -> None:
        """Ma'at's final gate: a `revise` verdict sends the answer back once, to whoever wrote
        it last, with the violations; the revision is not gated again, so the gate never loops."""
        s = self.settings
        proposal = result.final
        assert proposal is not None  # the fan-out set it
        answer = await self._call(
            "gate",
            s.gate,
            gate_messages(result.question, proposal.text, s.invariants),
            response_format=json_schema_format(GATE_SCHEMA_NAME, GATE_SCHEMA),
        )
        passed, violations = (
            parse_verdict(answer.text, "pass", "revise", "violations") if answer.ok else (None, [])
        )
        if passed is None:
            result.gate = GateResult(s.gate, "unchecked", answer=answer)
            why = answer.error if not answer.ok else "no verdict"
            result.notes.append(f"the gate {s.gate} did not check the answer ({why})")
            result.path.append("gate: unchecked")
            return
        if passed:
            result.gate = GateResult(s.gate, "pass", answer=answer)
            result.path.append(f"gate: passed by {s.gate}")
            return
        result.gate = GateResult(s.gate, "revised", violations, answer)
        author = proposal.archetype
        result.path.append(f"gate: {len(violations)} violation(s), sent back to {author}")
        messages = revise_messages(
            result.question, proposal.text, violations, "invariants the answer breaks"
        )
        await self._rewrite(result, "revise", author, messages, stream, on_delta)

    def _records(self, result: CouncilResult) -> list[archon_memory.MemoryRecord]:
        """Every answer as an `answer`; the passes between the answers and the final text
        (aggregate, reviews, rewrites) as `thought` chunks."""
        now = time.time()
        records = [
            archon_memory.MemoryRecord(a.text, a.archetype, 0, result.session, "answer", now)
            for a in result.answered
        ]
        passes: list[tuple[str, str]] = []
        if result.aggregate is not None and result.aggregate.ok:
            passes.append((result.aggregate.archetype, result.aggregate.text))
        # A review is kept as its reasons: the JSON around them says nothing to a later round.
        passes += [(r.critic, "; ".join(r.reasons) or "approved") for r in result.reviews]
        passes += [(a.archetype, a.text) for a in result.rewrites if a.ok]
        for step, (archetype, text) in enumerate(passes, 1):
            records += [
                archon_memory.MemoryRecord(chunk, archetype, step, result.session, "thought", now)
                for chunk in archon_memory.chunk_text(text)
            ]
        return [r for r in records if r.text.strip()]

    async def _remember(self, result: CouncilResult) -> None:
        if self.memory is None or not self.settings.memory or "error" in result.memory:
            return
        records = self._records(result)
        start = time.perf_counter()
        try:
            await self.memory.remember(records)
        except archon_memory.MemoryUnavailable as exc:
            result.memory["error"] = str(exc)
            result.notes.append(f"memory unavailable, this round was not stored: {exc}")
            return
        result.memory["stored"] = len(records)
        result.memory["store_s"] = round(time.perf_counter() - start, 4)


# --- the LiteLLM handler -----------------------------------------------------------------------


def session_of(litellm_params: dict[str, Any] | None) -> str:
    """The memory's session: the request's `metadata.session`, else LiteLLM's session id, else
    the OpenAI `user` field, else one shared session."""
    params = litellm_params or {}
    metadata = params.get("metadata") or {}
    for value in (
        metadata.get("session") if isinstance(metadata, dict) else None,
        params.get("litellm_session_id"),
        metadata.get("user_api_key_end_user_id") if isinstance(metadata, dict) else None,
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return DEFAULT_SESSION


def _custom_llm() -> Any:
    # Imported by name so the engine loads (and is tested) without litellm.
    try:
        return importlib.import_module("litellm").CustomLLM
    except (ImportError, AttributeError):
        return object


def _handler_error(kind: str, message: str, model: str = "council") -> Exception:
    """LiteLLM's own exception of that kind: the proxy passes its status (400, 503, 504, 500)
    and message to the client as they are. Any other exception it wraps into a 500 whose message
    carries the traceback."""
    try:
        litellm = importlib.import_module("litellm")
    except ImportError:
        return RuntimeError(message)
    error: Any = getattr(litellm, kind)
    return error(message=message, model=model, llm_provider="archon")  # type: ignore[no-any-return]


STREAM_PIECE_CHARS = 24


def pieces(text: str, size: int = STREAM_PIECE_CHARS) -> list[str]:
    """The final text cut for streaming, on word boundaries where it can be."""
    out: list[str] = []
    while text:
        cut = len(text) if len(text) <= size else text.rfind(" ", 1, size) + 1 or size
        out.append(text[:cut])
        text = text[cut:]
    return out


class CouncilHandler(_custom_llm()):  # type: ignore[misc]
    """Model `council` on the gateway: the whole deliberation server-side, one OpenAI answer.

    The per-archetype answers, the path and the gate's verdict travel in a `council` field
    beside `choices` (LiteLLM keeps a custom handler's extra response fields); streamed, in the
    last chunk's `council` field."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._client: GatewayClient | None = None
        self._memory: archon_memory.Memory | None = None

    def _council(self) -> Council:
        if self._settings is None:
            self._settings = load_settings()
        settings = self._settings
        if self._client is None:
            gateway = os.environ.get(GATEWAY_ENV) or DEFAULT_GATEWAY
            key = os.environ.get(MASTER_KEY_ENV) or None
            self._client = GatewayClient(gateway, key, timeout_s=settings.timeout_s)
            if settings.memory and settings.qdrant_url and settings.embedding_model:
                embedder = archon_memory.GatewayEmbedder(gateway, key, settings.embedding_model)
                self._memory = archon_memory.QdrantRestMemory(
                    settings.qdrant_url,
                    os.environ.get(QDRANT_KEY_ENV) or None,
                    settings.collection,
                    embedder,
                )
        return Council(self._client, settings, memory=self._memory)

    async def _deliberate(self, messages: Messages, litellm_params: Any) -> CouncilResult:
        try:
            council = self._council()
            result = await council.deliberate(messages, session=session_of(litellm_params))
        except AuthRefused as exc:
            # The key refused is the pod's own master key: the gateway's fault, not the caller's.
            raise _handler_error("InternalServerError", f"the council's own call: {exc}") from exc
        except CouncilError as exc:
            raise _handler_error("BadRequestError", str(exc)) from exc
        if result.final is None:
            if result.timed_out:
                raise _handler_error(
                    "Timeout", f"the council gave no answer within {council.settings.timeout_s:g} s"
                )
            reasons = "; ".join(f"{a.archetype}: {a.error}" for a in result.answers) or "none"
            raise _handler_error(
                "ServiceUnavailableError", f"no council member answered ({reasons})"
            )
        return result

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._deliberate(kwargs["messages"], kwargs.get("litellm_params"))
        response = kwargs["model_response"]
        response.choices[0].message.content = result.final_text
        response.council = result.metadata()
        return response

    async def astreaming(self, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        result = await self._deliberate(kwargs["messages"], kwargs.get("litellm_params"))
        for piece in pieces(result.final_text or ""):
            yield {
                "text": piece,
                "is_finished": False,
                "finish_reason": "",
                "usage": None,
                "index": 0,
                "tool_use": None,
            }
        yield {
            "text": "",
            "is_finished": True,
            "finish_reason": "stop",
            "usage": None,
            "index": 0,
            "tool_use": None,
            "provider_specific_fields": {"council": result.metadata()},
        }


handler = CouncilHandler()

__all__ = [
    "Answer",
    "AuthRefused",
    "Council",
    "CouncilError",
    "CouncilHandler",
    "CouncilResult",
    "GatewayClient",
    "GatewayUnreachable",
    "Settings",
    "SettingsError",
    "handler",
    "load_settings",
]
