"""The council's prompts, the JSON schemas its stages answer through, and the parsers of those
answers. The archetype's persona comes from its system prompt (the gateway's hook adds it); these
only frame each task, so any archetype can aggregate, review or gate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import archon_memory
from archon_council_client import Answer, Messages

# The aggregator reads every answer in one prompt, which must fit its context. Reserved: its own
# answer (up to 1024 tokens) and ~800 tokens of system prompt and framing; the question counts
# against the rest. Characters per token is an estimate for code and prose with Qwen's tokenizer.
AGGREGATE_RESERVED_TOKENS = 1024 + 800
CHARS_PER_TOKEN = 3.5
MIN_ANSWER_CHARS = 200
MEMORY_CHARS = 600  # each recalled memory in a prompt is cut to this


def _fair_shares(lengths: Sequence[int], room: int) -> list[int]:
    """Caps that fit `room` characters: short answers keep everything, what they leave is shared
    evenly by the longer ones."""
    caps = [0] * len(lengths)
    left = room
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for done, i in enumerate(order):
        caps[i] = min(lengths[i], max(left // (len(order) - done), MIN_ANSWER_CHARS))
        left = max(left - caps[i], 0)
    return caps


def fit_to_context(
    question: str, answers: Sequence[Answer], context_tokens: int
) -> tuple[list[str], list[str]]:
    """Each answer's text for the aggregation prompt, cut to a character budget derived from
    `context_tokens`, and one note per answer that was cut."""
    texts = [a.text.strip() for a in answers]
    room = int((context_tokens - AGGREGATE_RESERVED_TOKENS) * CHARS_PER_TOKEN) - len(question)
    caps = _fair_shares([len(t) for t in texts], max(room, 0))
    fitted: list[str] = []
    notes: list[str] = []
    for answer, text, cap in zip(answers, texts, caps, strict=True):
        if len(text) <= cap:
            fitted.append(text)
            continue
        fitted.append(
            f"{text[:cap].rstrip()}\n[... trimmed by the council: the first {cap} of "
            f"{len(text)} characters, to fit the aggregator's {context_tokens}-token context]"
        )
        notes.append(
            f"{answer.archetype}'s answer was trimmed to {cap} of {len(text)} characters for the "
            f"aggregator's {context_tokens}-token context"
        )
    return fitted, notes


def user_message(content: str) -> Messages:
    return [{"role": "user", "content": content}]


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's `response_format` for a JSON schema; vLLM enforces it by guided decoding
    (docs.vllm.ai/en/latest/features/structured_outputs/)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


ROUTE_SCHEMA_NAME = "council_route"
GATE_SCHEMA_NAME = "council_gate"
REVIEW_SCHEMA_NAME = "council_review"


def route_schema(members: Sequence[str], low: int, high: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "archetypes": {
                "type": "array",
                "items": {"type": "string", "enum": list(members)},
                "minItems": low,
                "maxItems": high,
                "uniqueItems": True,
            }
        },
        "required": ["archetypes"],
        "additionalProperties": False,
    }


GATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["pass", "revise"]},
        "violations": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["verdict", "violations"],
    "additionalProperties": False,
}

REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["approve", "reject"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["verdict", "reasons"],
    "additionalProperties": False,
}


def route_messages(
    question: str, members: Sequence[str], descriptions: dict[str, str], low: int, high: int
) -> Messages:
    lines = [f"- {name}: {descriptions.get(name, '')}".rstrip(": ") for name in members]
    return user_message(
        f"Choose the {low} to {high} council members best suited to answer this request.\n\n"
        f"Members:\n" + "\n".join(lines) + f"\n\nRequest:\n{question}\n\n"
        'Answer as JSON: {"archetypes": [names]}.'
    )


def member_messages(
    conversation: Messages, memories: Sequence[archon_memory.Recollection]
) -> Messages:
    """The client's conversation, with the memories that resonate added to its last turn."""
    if not memories:
        return conversation
    recalled = "\n".join(
        f"- ({m.archetype}'s {m.kind}, resonance {m.score:.2f}) {m.text[:MEMORY_CHARS].strip()}"
        for m in memories
    )
    note = (
        "\n\n[Earlier council rounds in this session that resonate with this request, most "
        f"relevant first; use them only where they help]\n{recalled}"
    )
    out = [dict(m) for m in conversation]
    for message in reversed(out):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            message["content"] = message["content"] + note
            break
    return out


def aggregate_messages(question: str, answers: Sequence[Answer], context_tokens: int) -> Messages:
    parts = [f"Question put to the council:\n{question}\n"]
    texts, _ = fit_to_context(question, answers, context_tokens)
    for answer, text in zip(answers, texts, strict=True):
        parts.append(f"--- answer from {answer.archetype} ---\n{text}\n")
    parts.append(
        "Merge these answers into the single best answer to the question: keep what is correct, "
        "resolve disagreements explicitly, drop what is wrong or redundant. Answer the question "
        "directly; do not describe the council."
    )
    return user_message("\n".join(parts))


def review_messages(question: str, proposal: str) -> Messages:
    return user_message(
        f"Question:\n{question}\n\n--- proposed answer ---\n{proposal.strip()}\n\n"
        "Review the proposed answer. Approve it only if it is correct and safe to act on; "
        'otherwise reject it with the reasons, most severe first. Answer as JSON: {"verdict": '
        '"approve" or "reject", "reasons": [...]}.'
    )


def revise_messages(question: str, proposal: str, reasons: Sequence[str], why: str) -> Messages:
    listed = "\n".join(f"- {r}" for r in reasons) or "- (no reasons given)"
    return user_message(
        f"Question:\n{question}\n\n--- your earlier answer ---\n{proposal.strip()}\n\n"
        f"--- {why} ---\n{listed}\n\nWrite the corrected answer, addressing every point."
    )


def rebirth_messages(question: str, proposal: str, critiques: Sequence[Sequence[str]]) -> Messages:
    rounds = "\n".join(
        f"Review {i}:\n" + "\n".join(f"- {r}" for r in reasons)
        for i, reasons in enumerate(critiques, 1)
    )
    return user_message(
        f"Question:\n{question}\n\n--- the council's answer, rejected {len(critiques)} times ---\n"
        f"{proposal.strip()}\n\n--- the critiques ---\n{rounds}\n\n"
        "The answer could not be repaired. Write a new answer from first principles that "
        "meets every critique; keep only what the critiques did not touch."
    )


def gate_messages(question: str, proposal: str, invariants: Sequence[str]) -> Messages:
    listed = "\n".join(f"{i}. {inv}" for i, inv in enumerate(invariants, 1))
    return user_message(
        f"Invariants the answer must keep:\n{listed}\n\nQuestion:\n{question}\n\n"
        f"--- answer ---\n{proposal.strip()}\n\nCheck the answer against every invariant. "
        'Answer as JSON: {"verdict": "pass"} with no violations if it keeps them all, else '
        '{"verdict": "revise", "violations": ["<invariant>: <how the answer breaks it>", ...]}.'
    )


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            return None
        try:
            value = json.loads(text[start : end + 1])
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v).strip() for v in value if str(v).strip()]


def parse_route(
    text: str, members: Sequence[str], low: int, high: int
) -> tuple[list[str], str | None]:
    """(chosen, None) for a valid choice, else (every member, why the choice was refused)."""
    data = _json_object(text)
    picked = [] if data is None else _strings(data.get("archetypes"))
    chosen = [n for i, n in enumerate(picked) if n in members and n not in picked[:i]]
    if data is None:
        return list(members), "the router's reply was not JSON"
    if len(chosen) < low or len(chosen) > high or len(chosen) != len(picked):
        return list(members), f"the router chose {picked!r}, not {low}-{high} known members"
    return [n for n in members if n in chosen], None


def parse_verdict(text: str, yes: str, no: str, reasons_key: str) -> tuple[bool | None, list[str]]:
    """(True, []) for `yes`, (False, reasons) for `no`, (None, []) for anything else."""
    data = _json_object(text)
    if data is None:
        return None, []
    verdict = str(data.get("verdict", "")).strip().lower()
    if verdict == yes:
        return True, []
    if verdict == no:
        return False, _strings(data.get(reasons_key)) or ["no reasons given"]
    return None, []
