"""`archon council`: the council's deliberation (router, fan-out, aggregation, shadow veto with
Phoenix, Ma'at's gate, resonance memory).

The engine is the chart's `files/archon_council*.py` (with `files/archon_memory.py`), the same
code the gateway pod serves as model `council`; it is loaded here from the chart the package ships
and registered under its own names, so `archon council` and the gateway cannot drift apart.
"""

from archon.paths import load_chart_module

# In import order: each of the chart's modules imports the ones before it by name.
archon_memory = load_chart_module("archon_memory")
load_chart_module("archon_council_client")
# The prompts and parsers, and the engine module itself, for what the names below leave out.
prompts = load_chart_module("archon_council_prompts")
engine = load_chart_module("archon_council")

from archon_council import (  # noqa: E402
    Council,
    CouncilResult,
    Progress,
    Settings,
    SettingsError,
)
from archon_council_client import (  # noqa: E402
    Answer,
    AuthRefused,
    CouncilError,
    GatewayClient,
    GatewayUnreachable,
)

__all__ = [
    "Answer",
    "AuthRefused",
    "Council",
    "CouncilError",
    "CouncilResult",
    "GatewayClient",
    "GatewayUnreachable",
    "Progress",
    "Settings",
    "SettingsError",
    "archon_memory",
    "engine",
    "prompts",
]
