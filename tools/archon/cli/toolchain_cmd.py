"""`archon toolchain install|check|path`: the pinned helm, kubeconform and offline schemas."""

from __future__ import annotations

import argparse
import json

from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS, ArchonError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("toolchain", help="build, check or locate the pinned tools")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    install = actions.add_parser("install", help="build missing tools into the cache (idempotent)")
    install.add_argument("tools", nargs="*", help="only these tools (default: all)")
    install.set_defaults(handler=_install)

    check = actions.add_parser("check", help="run every tool and verify its pinned version")
    options.add_output(check)
    check.set_defaults(handler=_check)

    path = actions.add_parser("path", help="print a tool's path (or the cache folder)")
    path.add_argument("tool", nargs="?", help="tool name, `schemas`, or nothing for the cache")
    path.set_defaults(handler=_path)


def _install(args: argparse.Namespace) -> int:
    from archon.toolchain import ensure_all, ensure_schemas

    paths = ensure_all(args.tools or None, announce=True)
    schemas = ensure_schemas()
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"schemas: {schemas}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from archon.toolchain import load_specs
    from archon.toolchain.install import is_installed, tool_path, verify
    from archon.toolchain.schemas import STAMP, schemas_root

    rows = []
    ok = True
    for spec in load_specs().values():
        row = {"tool": spec.name, "version": spec.version, "ok": False, "detail": ""}
        if not is_installed(spec):
            row["detail"] = "not built: run `archon toolchain install`"
        else:
            try:
                row["detail"] = verify(spec, tool_path(spec.name))
                row["ok"] = True
            except ArchonError as exc:
                row["detail"] = exc.line()
        ok = ok and bool(row["ok"])
        rows.append(row)
    root = schemas_root()
    schemas_ok = (root / STAMP).is_file()
    ok = ok and schemas_ok
    rows.append(
        {
            "tool": "schemas",
            "version": root.name,
            "ok": schemas_ok,
            "detail": str(root) if schemas_ok else "missing: run `archon toolchain install`",
        }
    )
    if args.output == "json":
        print(json.dumps({"ok": ok, "tools": rows}, indent=2))
    else:
        for row in rows:
            mark = "ok  " if row["ok"] else "FAIL"
            print(f"{mark} {row['tool']:<12} {row['version']:<24} {row['detail']}")
    return EXIT_OK if ok else EXIT_PROBLEMS


def _path(args: argparse.Namespace) -> int:
    from archon.paths import cache_dir
    from archon.toolchain import tool_path
    from archon.toolchain.schemas import schemas_root

    if not args.tool:
        print(cache_dir())
    elif args.tool == "schemas":
        print(schemas_root())
    else:
        print(tool_path(args.tool))
    return EXIT_OK
