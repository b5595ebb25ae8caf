"""`archon render -f FILE...`: the manifests helm would apply, rendered by the real helm."""

from __future__ import annotations

import argparse
import json
import sys

from archon.cli import options
from archon.errors import EXIT_OK
from archon.helm import DEFAULT_NAMESPACE, DEFAULT_RELEASE


def add_chart_args(parser: argparse.ArgumentParser) -> None:
    from archon.cli.options import namespace_name, release_name

    parser.add_argument(
        "--release", default=DEFAULT_RELEASE, type=release_name, help="release name"
    )
    parser.add_argument(
        "--namespace", "-n", default=DEFAULT_NAMESPACE, type=namespace_name, help="namespace"
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "render",
        help="render the chart with values files (helm template)",
        description="Values files are applied in order, like repeated helm -f.",
    )
    parser.add_argument("-f", "--values", dest="files", action="append", default=[], metavar="FILE")
    add_chart_args(parser)
    options.add_output(
        parser,
        help_json="text: the manifests as YAML, as helm prints them; json: a list of objects",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.render import render_chart

    rendered = render_chart(args.files, release=args.release, namespace=args.namespace)
    if args.output == "json":
        json.dump({"objects": rendered.objects}, sys.stdout, indent=2)
        print()
    else:
        sys.stdout.write(rendered.manifest)
    return EXIT_OK
