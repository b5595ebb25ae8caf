"""The archetype gateway: value checks, the LiteLLM config the chart renders, a local proxy.

`archetype_problems` is the schema-external lint check (unique names and what the chart refuses);
`config` reads the gateway files out of a rendered chart and points them at loopback servers;
`proxy` runs the real LiteLLM proxy on 127.0.0.1 for tests, the benchmark and local trials;
`hook` is the LiteLLM callback the chart ships (standard library only).
"""

from archon.gateway.problems import archetype_problems

__all__ = ["archetype_problems"]
