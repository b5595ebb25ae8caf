"""The council's own prompts: how answers are handed to the aggregator and to the critic.

The archetype's persona comes from its system prompt (added by the gateway); these only frame the
task, so any archetype can aggregate or veto.
"""

from __future__ import annotations

from collections.abc import Sequence

from archon.council.client import Answer, Messages

APPROVE = "APPROVE"
REJECT = "REJECT"


def aggregate_messages(question: str, answers: Sequence[Answer]) -> Messages:
    parts = [f"Question put to the council:\n{question}\n"]
    for answer in answers:
        parts.append(f"--- answer from {answer.archetype} ---\n{answer.text.strip()}\n")
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
