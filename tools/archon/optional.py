"""Features that ship in separate subpackages, looked up without hard imports.

Lint and the demo use the preflight and the local cluster when they are installed; an
ImportError of the feature itself means "not shipped", any other ImportError is a real bug.
"""

from __future__ import annotations

import importlib
from typing import Any


def feature(module: str, attribute: str) -> Any | None:
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise
    return getattr(loaded, attribute, None)
