"""The pinned, real toolchain: helm, kubeconform and offline Kubernetes schemas.

Everything else in Archon finds its tools through `tool_path()` / `ensure()`, never through PATH.
"""

from archon.toolchain.install import ensure, ensure_all, status, tool_path
from archon.toolchain.registry import ToolSpec, load_specs
from archon.toolchain.schemas import ensure_schemas, schema_location

__all__ = [
    "ToolSpec",
    "ensure",
    "ensure_all",
    "ensure_schemas",
    "load_specs",
    "schema_location",
    "status",
    "tool_path",
]
