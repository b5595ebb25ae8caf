"""A small OpenAI-compatible simulation of a vLLM server, for machines without a GPU.

It is a simulation and says so (in every reply and in the `x-archon-simulation` header): the demo,
the integration tests and the archetypes use it to exercise clients against vLLM's HTTP surface
(`/health`, `/v1/models`, `/v1/chat/completions` with SSE streaming and structured output,
`/v1/embeddings`) on loopback. `archon.simulation.qdrant` does the same for Qdrant's REST API.
"""

from archon.simulation.server import SimulationConfig, SimulationServer, serve

__all__ = ["SimulationConfig", "SimulationServer", "serve"]
