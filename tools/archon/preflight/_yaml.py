"""YAML/JSON reading for the preflight data files, with the C loader when it is available."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from archon.errors import UsageError

# The C loader parses the bundled catalog several times faster; preflight must stay under 300 ms.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML (or JSON, a YAML subset) file; any failure is one UsageError line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError("file not found", source=str(path), fix="pass an existing file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read: {exc}", source=str(path), fix="pass a readable UTF-8 file"
        ) from None
    try:
        if file.suffix == ".json":
            return json.loads(text)
        return yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" at line {exc.lineno}"
        raise UsageError(
            f"invalid {'JSON' if file.suffix == '.json' else 'YAML'}{where}",
            source=str(path),
            fix="correct the syntax",
        ) from None
