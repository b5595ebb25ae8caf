"""The whole archetype path on loopback: the chart's gateway config, the real LiteLLM proxy, and
one vLLM simulation per model name the config routes to (no GPU, no cluster)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from archon.gateway.config import (
    CONFIG,
    COUNCIL,
    gateway_files,
    localize,
    upstream_models,
    write_config_dir,
)
from archon.gateway.proxy import START_TIMEOUT_S, run_proxy
from archon.render import render_chart
from archon.simulation import SimulationConfig, SimulationServer

LOCAL_MASTER_KEY = "sk-archon-local"  # loopback only; a cluster reads its key from a Secret


@dataclass
class LocalStack:
    url: str
    master_key: str
    simulations: dict[str, SimulationServer]
    config_path: Path


@contextmanager
def local_stack(
    files: Sequence[str | Path],
    workdir: Path,
    *,
    simulation: Callable[[str], SimulationConfig] = lambda model: SimulationConfig(model=model),
    master_key: str = LOCAL_MASTER_KEY,
    start_timeout_s: float = START_TIMEOUT_S,
    qdrant_url: str | None = None,
    qdrant_api_key: str = "",
) -> Iterator[LocalStack]:
    """Render the chart with `files`, start the simulations and the gateway, yield the URLs.

    `qdrant_url` replaces the council memory's in-cluster Qdrant (a loopback server or
    simulation); without it the council runs with its memory off."""
    files_ = gateway_files(render_chart(files).objects)
    if COUNCIL in files_:
        council = json.loads(files_[COUNCIL])
        council["memory"]["url"] = qdrant_url or ""
        council["memory"]["enabled"] = bool(qdrant_url) and council["memory"]["enabled"]
        files_ = files_ | {COUNCIL: json.dumps(council, indent=2)}
    config = yaml.safe_load(files_[CONFIG])
    with ExitStack() as stack:
        sims: dict[str, SimulationServer] = {}
        for model in sorted(set(upstream_models(config).values())):
            sims[model] = SimulationServer(simulation(model)).start()
            stack.callback(sims[model].close)
        local = localize(config, {m: s.url for m, s in sims.items()}, master_key=master_key)
        path = write_config_dir(files_, workdir, local)
        # The council handler inside the proxy authenticates to it as a cluster's pod does.
        env = {"LITELLM_MASTER_KEY": master_key} if master_key else {}
        if qdrant_api_key:
            env["ARCHON_QDRANT_API_KEY"] = qdrant_api_key
        proxy = stack.enter_context(run_proxy(path, timeout_s=start_timeout_s, extra_env=env))
        yield LocalStack(proxy.url, master_key, sims, path)
