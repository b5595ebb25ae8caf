"""`archon council`: one question fanned out to several archetypes through the gateway, then
an aggregation pass and, optionally, the shadow veto (a critic can send the aggregate back once).
"""

from archon.council.client import Answer, GatewayClient
from archon.council.run import CouncilResult, Progress, run_council

__all__ = ["Answer", "CouncilResult", "GatewayClient", "Progress", "run_council"]
