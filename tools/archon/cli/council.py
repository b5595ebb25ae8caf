"""`archon council "question"`: fan a question out to archetypes through the gateway."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from urllib.parse import urlsplit

from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS, UsageError

# Where `kubectl port-forward svc/<release>-archon-gateway 4000` puts the gateway.
DEFAULT_GATEWAY = "http://127.0.0.1:4000"
DEFAULT_AGGREGATOR = "maat"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "council",
        help="ask several archetypes at once through the gateway and aggregate their answers",
    )
    parser.add_argument("question", help="the question (use - to read it from standard input)")
    parser.add_argument(
        "--archetypes", help="comma-separated names (default: every archetype the gateway lists)"
    )
    parser.add_argument(
        "--aggregate",
        metavar="NAME",
        help=f"archetype that merges the answers (default: {DEFAULT_AGGREGATOR} when asked, "
        "else the first); `none` skips the pass",
    )
    parser.add_argument(
        "--veto", metavar="NAME", help="critic that reviews the result and may send it back once"
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


def gateway_url(text: str) -> str:
    """An http(s) URL with a host and a port in range (httpx would fail deep inside a task)."""
    parsed = urlsplit(text)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port == -1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a gateway URL such as {DEFAULT_GATEWAY} (http or https, a host, "
            "a port from 1 to 65535)"
        )
    return text


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _run(args: argparse.Namespace) -> int:
    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        raise UsageError("the question is empty", key="question", fix="ask something")
    if args.timeout <= 0:
        raise UsageError("must be > 0", key="--timeout", fix="pass seconds, e.g. 120")
    return asyncio.run(_council(args, question))


async def _council(args: argparse.Namespace, question: str) -> int:
    from archon.council import GatewayClient, run_council
    from archon.council.report import Printer

    api_key = os.environ.get(args.api_key_env) or None
    text = args.output == "text"
    printer = Printer(stream=args.stream and text)
    async with GatewayClient(args.gateway, api_key, timeout_s=args.timeout) as client:
        served = await client.models()
        chosen = _names(args.archetypes) or served
        unknown = [n for n in chosen if n not in served]
        if unknown:
            raise UsageError(
                f"the gateway does not serve {', '.join(unknown)}",
                key="--archetypes",
                fix=f"use names from: {', '.join(served) or '(none)'}",
            )
        aggregate = args.aggregate
        if aggregate is None and len(chosen) > 1:
            aggregate = DEFAULT_AGGREGATOR if DEFAULT_AGGREGATOR in served else chosen[0]
        if aggregate == "none":
            aggregate = None
        for role, name in (("--aggregate", aggregate), ("--veto", args.veto)):
            if name is not None and name not in served:
                raise UsageError(
                    f"the gateway does not serve {name}",
                    key=role,
                    fix=f"use one of: {', '.join(served)}",
                )
        if text:
            printer.header(args.gateway, chosen, aggregate, args.veto)
        result = await run_council(
            client,
            question,
            chosen,
            aggregate=aggregate,
            veto=args.veto,
            stream=args.stream,
            progress=printer.progress if text else _silent,
            on_delta=printer.delta if args.stream and text else None,
        )
    if text:
        printer.result(result)
    else:
        print(json.dumps(result.as_dict(), indent=2))
    return EXIT_OK if result.answered else EXIT_PROBLEMS


def _silent(*_: object) -> None:
    return None
