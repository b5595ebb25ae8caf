"""Parsers for command-line values, shared by the CLI and the benchmarks: argparse `type=`
callables that refuse what `int()` and `float()` alone would let through (nan, inf, zero)."""

from __future__ import annotations

import argparse
import math


def positive_number(text: str) -> float:
    """A finite number above zero (float() alone accepts nan and inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number above 0")
    return value


def positive_count(text: str) -> int:
    """A whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return value
