"""`archon lint` warns about what makes the served weights or code drift: an unpinned
model.revision, Hub adapters without a revision, trust-remote-code. Warnings keep the exit code:
0 clean or warnings only, 1 problems."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

SHA = "0123456789abcdef0123456789abcdef01234567"


def _file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return str(path)


def test_a_pinned_model_lints_without_warnings(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    done = run_cli("lint", "--no-preflight", _file(tmp_path, {"model": {"revision": SHA}}))
    assert done.code == 0 and "WARN" not in done.err


def test_unpinned_sources_warn_but_exit_zero(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    values = {
        "model": {"revision": "main", "extraConfig": {"trust-remote-code": True}},
        "archetypes": [
            {"name": "lilith", "mode": "lora", "lora": {"source": "someone/adapter"}},
            {"name": "thoth", "mode": "lora", "lora": {"source": "/models/adapters/thoth"}},
        ],
    }
    done = run_cli("lint", "--no-preflight", _file(tmp_path, values))
    assert done.code == 0, done.err
    warns = [line for line in done.err.splitlines() if line.startswith("WARN ")]
    assert len(warns) == 3, warns
    assert any("model.revision: main is a branch or tag" in w for w in warns)
    assert any("archetypes[name=lilith].lora.source: someone/adapter" in w for w in warns)
    assert not any("thoth" in w for w in warns), "a local path does not drift"
    assert any("model.extraConfig: trust-remote-code" in w and "fix:" in w for w in warns)
    report = json.loads(
        run_cli("lint", "--no-preflight", "--output", "json", _file(tmp_path, values)).out
    )
    assert report["ok"] is True and len(report["warnings"]) == 3


def test_trust_remote_code_in_extra_args_warns_and_problems_still_exit_one(
    run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    # schema-valid, refused by the chart (tensorParallelSize must equal gpu.count)
    values = {
        "model": {"revision": SHA, "extraArgs": ["--trust-remote-code"], "tensorParallelSize": 2}
    }
    done = run_cli("lint", "--no-preflight", _file(tmp_path, values))
    assert done.code == 1, "a problem is still a problem"
    assert "WARN" in done.err and "model.extraArgs: trust-remote-code" in done.err
