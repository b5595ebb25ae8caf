"""`archon council "question"`: the council's deliberation through the gateway.

By default the deliberation runs here, with the same engine the gateway pod serves as model
`council`; `--server-side` asks that model instead, so nothing but the gateway is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS, ArchonError, UsageError

if TYPE_CHECKING:
    from archon.council import GatewayClient, Settings

# Where `kubectl port-forward svc/<release>-archon-gateway 4000` puts the gateway.
DEFAULT_GATEWAY = "http://127.0.0.1:4000"
DEFAULT_AGGREGATOR = "maat"
DEFAULT_SESSION = "default"
DEFAULT_COUNCIL_MODEL = "council"
EXAMPLE_QDRANT = "http://127.0.0.1:6333"
# Flags of the local deliberation, which the gateway's council model takes from the chart instead.
LOCAL_ONLY = (
    "values",
    "archetypes",
    "router",
    "aggregate",
    "veto",
    "escalate",
    "max_depth",
    "gate",
    "invariant",
    "memory",
    "memory_path",
    "qdrant_url",
)
# The collection the static model's vectors use on a shared Qdrant server.
STATIC_SUFFIX = "static64"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "council",
        help="ask the council (router, archetypes, aggregation, veto, gate, memory) a question",
    )
    parser.add_argument("question", help="the question (use - to read it from standard input)")
    parser.add_argument(
        "-f",
        "--values",
        action="append",
        default=[],
        metavar="FILE",
        help="values whose `council:` settings to use (as the chart renders them), e.g. "
        "values/council.yaml; flags below override them",
    )
    parser.add_argument(
        "--archetypes",
        help="comma-separated members (default: the values' members, else every archetype the "
        "gateway lists)",
    )
    parser.add_argument("--router", metavar="NAME", help="archetype that picks the members")
    parser.add_argument(
        "--aggregate",
        metavar="NAME",
        help=f"archetype that merges the answers (default: {DEFAULT_AGGREGATOR} when asked, "
        "else the first); `none` skips the pass",
    )
    parser.add_argument(
        "--veto", metavar="NAME", help="critic that reviews the result and may send it back"
    )
    parser.add_argument(
        "--escalate", metavar="NAME", help="archetype that rewrites after a second rejection"
    )
    parser.add_argument(
        "--max-depth", type=int, metavar="N", help="most reviews by the critic (default 3)"
    )
    parser.add_argument("--gate", metavar="NAME", help="archetype that checks the invariants")
    parser.add_argument(
        "--invariant",
        action="append",
        default=[],
        metavar="TEXT",
        help="an invariant the final answer must keep (repeat for more)",
    )
    memory = parser.add_argument_group("resonance memory")
    memory.add_argument(
        "--memory",
        choices=("on", "off"),
        help="embed the answers into Qdrant and recall them in later rounds (default: the "
        "values' council.memory.enabled, else off)",
    )
    memory.add_argument(
        "--memory-path",
        type=Path,
        metavar="DIR",
        help="qdrant-client local mode folder (default: the Archon data dir; implies --memory on)",
    )
    memory.add_argument(
        "--qdrant-url",
        type=qdrant_url,
        metavar="URL",
        help="a Qdrant server instead of local mode (implies --memory on)",
    )
    memory.add_argument(
        "--qdrant-api-key-env",
        default="ARCHON_QDRANT_API_KEY",
        metavar="VAR",
        help="environment variable holding the Qdrant key (default: %(default)s)",
    )
    memory.add_argument(
        "--session",
        default=DEFAULT_SESSION,
        help="memory session: rounds recall only their own session (default: %(default)s)",
    )
    parser.add_argument(
        "--server-side",
        action="store_true",
        help="ask the gateway's council model: the deliberation runs in the gateway pod, with "
        "the chart's settings (only --session, --model, --stream and the gateway flags apply)",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_COUNCIL_MODEL,
        help="with --server-side: the council's model name (council.modelName; default "
        "%(default)s)",
    )
    parser.add_argument("--stream", action="store_true", help="stream the answers as they come")
    parser.add_argument(
        "--gateway",
        default=os.environ.get("ARCHON_GATEWAY_URL") or DEFAULT_GATEWAY,
        type=gateway_url,
        help="gateway base URL (default: $ARCHON_GATEWAY_URL or %(default)s)",
    )
    parser.add_argument(
        "--api-key-env",
        default="ARCHON_API_KEY",
        metavar="VAR",
        help="environment variable holding the gateway key (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=options.positive_number,
        default=300.0,
        metavar="S",
        help="seconds per call (default 300)",
    )
    options.add_output(parser)
    parser.set_defaults(handler=_run)


def _http_url(text: str, example: str) -> str:
    """An http(s) URL with a host and a port in range (httpx would fail deep inside a task)."""
    parsed = urlsplit(text)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port == -1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a URL such as {example} (http or https, a host, "
            "a port from 1 to 65535)"
        )
    return text


def gateway_url(text: str) -> str:
    return _http_url(text, DEFAULT_GATEWAY)


def qdrant_url(text: str) -> str:
    return _http_url(text, EXAMPLE_QDRANT)


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _run(args: argparse.Namespace) -> int:
    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        raise UsageError("the question is empty", key="question", fix="ask something")
    if args.max_depth is not None and args.max_depth < 1:
        raise UsageError(
            f"{args.max_depth} is not a depth", key="--max-depth", fix="pass 1 or more"
        )
    if args.server_side:
        given = [
            f"--{n.replace('_', '-')}" for n in LOCAL_ONLY if getattr(args, n) not in (None, [])
        ]
        if given:
            raise UsageError(
                f"{', '.join(given)} shape a local deliberation; the gateway's council model "
                "uses the chart's council settings",
                key="--server-side",
                fix="drop those flags, or drop --server-side",
            )
    elif args.memory is None and (args.qdrant_url or args.memory_path):
        args.memory = "on"
    from archon.council import AuthRefused, CouncilError, GatewayUnreachable

    try:
        if args.server_side:
            return asyncio.run(_server_side(args, question))
        return asyncio.run(_council(args, question))
    except AuthRefused as exc:
        raise ArchonError(
            str(exc),
            fix="export the gateway's master key in the variable --api-key-env names "
            "(default ARCHON_API_KEY)",
        ) from exc
    except GatewayUnreachable as exc:
        raise UsageError(
            str(exc),
            fix="port-forward it (kubectl port-forward svc/<release>-archon-gateway 4000:4000) "
            "or pass --gateway URL",
        ) from exc
    except CouncilError as exc:
        raise UsageError(str(exc), key="council", fix="check the council settings") from exc


def _values_settings(files: Sequence[Path]) -> Settings:
    """The `council.json` the chart renders from these values: the gateway pod reads the same."""
    from archon.council import Settings, SettingsError
    from archon.gateway.config import COUNCIL, gateway_files
    from archon.render import render_chart

    rendered = gateway_files(render_chart(list(files)).objects)
    if COUNCIL not in rendered:
        raise UsageError(
            "these values render no council settings",
            key="council.enabled",
            fix="set council.enabled: true (see values/council.yaml)",
        )
    try:
        return Settings.from_dict(json.loads(rendered[COUNCIL]))
    except SettingsError as exc:
        raise UsageError(str(exc), key="council", fix="correct the council values") from exc


def _settings(args: argparse.Namespace, served: list[str]) -> Settings:
    from archon.council import Settings, SettingsError

    base = _values_settings(args.values) if args.values else Settings()
    changes: dict[str, Any] = {}
    members = _names(args.archetypes) or list(base.members) or served
    changes["members"] = tuple(members)
    if args.aggregate is not None:
        changes["aggregator"] = "" if args.aggregate == "none" else args.aggregate
    elif not args.values and len(members) > 1:
        changes["aggregator"] = DEFAULT_AGGREGATOR if DEFAULT_AGGREGATOR in served else members[0]
    for flag, name in (
        ("router", "router"),
        ("veto", "critic"),
        ("escalate", "escalate_to"),
        ("gate", "gate"),
        ("max_depth", "max_depth"),
    ):
        value = getattr(args, flag)
        if value is not None:
            changes[name] = value
    if args.invariant:
        changes["invariants"] = tuple(args.invariant)
    if args.memory is not None:
        changes["memory"] = args.memory == "on"
    settings = dataclasses.replace(base, **changes)
    try:
        settings.check()
    except SettingsError as exc:
        raise UsageError(str(exc), key="council", fix="correct the flags or values") from exc
    _check_served(settings, served, gate_flag=args.gate is not None)
    return settings


def _check_served(settings: Settings, served: list[str], gate_flag: bool) -> None:
    unknown = [n for n in settings.members if n not in served]
    if unknown:
        raise UsageError(
            f"the gateway does not serve {', '.join(unknown)}",
            key="--archetypes",
            fix=f"use names from: {', '.join(served) or '(none)'}",
        )
    flags = {
        "router": "--router",
        "aggregator": "--aggregate",
        "critic": "--veto",
        "escalate_to": "--escalate",
        "gate": "--gate",
    }
    for role, name in settings.roles().items():
        if name not in served:
            raise UsageError(
                f"the gateway does not serve {name}",
                key=flags[role],
                fix=f"use one of: {', '.join(served)}",
            )
    if gate_flag and not settings.invariants:
        raise UsageError(
            f"the gate {settings.gate} has no invariants to check",
            key="--invariant",
            fix="pass --invariant TEXT (or set council.gate.invariants in the values)",
        )


@dataclass
class _Memory:
    """The memory `archon council` opened, and the embedder it must close with it."""

    store: Any
    embedder: Any

    async def close(self) -> None:
        await self.store.close()
        close = getattr(self.embedder, "close", None)
        if close is not None:
            await close()


def _open_memory(args: argparse.Namespace, settings: Settings, api_key: str | None) -> _Memory:
    """Local mode with the static model by default. Against a Qdrant server (--qdrant-url), the
    cluster's memory: its vectors come from the embedding archetype, so the embeddings come from
    it too, through the gateway; without one (no -f values naming it) the static model writes to
    a collection of its own, since its 64-dimension vectors cannot share one."""
    from archon.council import archon_memory
    from archon.council.memory import QdrantClientMemory, StaticEmbedder, default_memory_path

    if not args.qdrant_url:
        embedder: Any = StaticEmbedder()
        path = args.memory_path or default_memory_path()
        store = QdrantClientMemory(embedder, path=path, collection=settings.collection)
        return _Memory(store, embedder)
    qdrant_key = os.environ.get(args.qdrant_api_key_env) or None
    collection = settings.collection
    if settings.embedding_model:
        embedder = archon_memory.GatewayEmbedder(args.gateway, api_key, settings.embedding_model)
    else:
        embedder = StaticEmbedder()
        collection = f"{settings.collection}-{STATIC_SUFFIX}"
    store = QdrantClientMemory(
        embedder, url=args.qdrant_url, api_key=qdrant_key, collection=collection
    )
    return _Memory(store, embedder)


async def _council(args: argparse.Namespace, question: str) -> int:
    from archon.council import Council, GatewayClient
    from archon.council.report import Printer

    api_key = os.environ.get(args.api_key_env) or None
    text = args.output == "text"
    printer = Printer(stream=args.stream and text)
    async with GatewayClient(args.gateway, api_key, timeout_s=args.timeout) as client:
        served = await client.models()
        settings = _settings(args, served)
        memory = _open_memory(args, settings, api_key) if settings.memory else None
        try:
            if text:
                printer.header(args.gateway, list(settings.members), settings.roles())
            council = Council(client, settings, memory=None if memory is None else memory.store)
            if text:
                council.progress = printer.progress
            result = await council.deliberate(
                question,
                session=args.session,
                stream=args.stream,
                on_delta=printer.delta if args.stream and text else None,
            )
        finally:
            if memory is not None:
                await memory.close()
    if text:
        printer.result(result)
        if result.final is not None and not args.stream:
            print(f"== council answer ({result.final.archetype})", file=sys.stdout)
            print(result.final.text.strip(), file=sys.stdout)
    else:
        print(json.dumps(result.as_dict(), indent=2))
    return EXIT_OK if result.final is not None else EXIT_PROBLEMS


async def _server_side(args: argparse.Namespace, question: str) -> int:
    """The gateway's `council` model: one OpenAI call, the deliberation in its `council` field."""
    from archon.council import GatewayClient

    api_key = os.environ.get(args.api_key_env) or None
    async with GatewayClient(args.gateway, api_key, timeout_s=args.timeout) as client:
        await _require_council_model(client, args.model)
        messages = [{"role": "user", "content": question}]
        live = args.stream and args.output == "text"
        answer = await client.chat(
            args.model,
            messages,
            stream=args.stream,
            on_delta=(lambda _name, piece: print(piece, end="", flush=True)) if live else None,
            metadata={"session": args.session},
        )
    if args.output == "json":
        print(json.dumps({"final": answer.text, "council": answer.council, **answer.as_dict()}))
    else:
        if live:
            print()
        elif answer.ok:
            print(answer.text.strip())
        meta = answer.council or {}
        if meta.get("path"):
            print(f"path: {' -> '.join(meta['path'])}", file=sys.stderr)
        if not answer.ok:
            print(f"council: {answer.error}", file=sys.stderr)
    return EXIT_OK if answer.ok else EXIT_PROBLEMS


async def _require_council_model(client: GatewayClient, model: str) -> None:
    served = await client.models(archetypes_only=False)
    if model not in served:
        raise UsageError(
            f"the gateway at {client.base_url} serves no {model!r} model",
            key="--model" if model != DEFAULT_COUNCIL_MODEL else "--server-side",
            fix="set council.enabled: true in the chart values (council.modelName names it), "
            "or drop --server-side",
        )
