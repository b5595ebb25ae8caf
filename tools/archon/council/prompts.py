"""The council's own prompts: how answers are handed to the aggregator and to the critic.

The archetype's persona comes from its system prompt (added by the gateway); these only frame the
task, so any archetype can aggregate or veto.
"""

from __future__ import annotations

from collections.abc import Sequence

from archon.council.client import Answer, Messages

APPROVE = "APPROVE"
REJECT = "REJECT"

# The aggregator reads every answer in one prompt, which must fit the context of the model behind
# it: values/council.yaml serves the 14B model with maxModelLen 6144. What is reserved: the
# aggregator's own answer (maat's max_tokens, 1024) and ~800 tokens of system prompt and framing;
# the question counts against the rest. Characters per token is an estimate for code and prose
# with Qwen's tokenizer; the answers' max_tokens in values/council.yaml already fit, so trimming is
# the safety net for longer answers (other profiles, a larger max_tokens).
CONTEXT_TOKENS = 6144
AGGREGATE_RESERVED_TOKENS = 1024 + 800
CHARS_PER_TOKEN = 3.5
MIN_ANSWER_CHARS = 200


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
    question: str, answers: Sequence[Answer], context_tokens: int = CONTEXT_TOKENS
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
            f"{text[:cap].rstrip()}\n[... trimmed by archon council: the first {cap} of "
            f"{len(text)} characters, to fit the aggregator's {context_tokens}-token context]"
        )
        notes.append(
            f"{answer.archetype}'s answer was trimmed to {cap} of {len(text)} characters for the "
            f"aggregator's {context_tokens}-token context"
        )
    return fitted, notes


def aggregate_messages(
    question: str, answers: Sequence[Answer], context_tokens: int = CONTEXT_TOKENS
) -> Messages:
    parts = [f"Question put to the council:\n{question}\n"]
    texts, _ = fit_to_context(question, answers, context_tokens)
    for answer, text in zip(answers, texts, strict=True):
        parts.append(f"--- answer from {answer.archetype} ---\n{text}\n")
    parts.append(
        "Merge these answers into the single best answer to the question: keep what is correct, "
        "resolve disagreements explicitly, drop what is wrong or redundant. Answer the question "
        "directly; do not describe the council."
    )
    return [{"role": "user", "content": "\n".join(parts)}]


def veto_messages(question: str, aggregate: Answer) -> Messages:
    return [
        {
            "role": "user",
            "content": (
                f"Question:\n{question}\n\n--- proposed answer ---\n{aggregate.text.strip()}\n\n"
                f"Review the proposed answer. If it is correct and safe to act on, reply with "
                f"{APPROVE} alone on the first line. Otherwise reply with {REJECT} on the first "
                "line, then the reasons, most severe first."
            ),
        }
    ]


def revise_messages(question: str, aggregate: Answer, reasons: str) -> Messages:
    return [
        {
            "role": "user",
            "content": (
                f"Question:\n{question}\n\n--- your earlier answer ---\n{aggregate.text.strip()}"
                f"\n\n--- a critic sent it back for these reasons ---\n{reasons.strip()}\n\n"
                "Write the corrected answer, addressing every reason."
            ),
        }
    ]


def verdict(review: str) -> tuple[bool, str]:
    """(approved, reasons) from a critic's reply: approved only on an explicit APPROVE first."""
    text = review.strip()
    first, _, rest = text.partition("\n")
    if first.strip().upper().startswith(APPROVE):
        return True, ""
    reasons = rest.strip() if first.strip().upper().startswith(REJECT) else text
    return False, reasons or "the critic gave no reasons"
