"""What `archon deploy` checks before it touches a cluster (no cluster needed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archon.deploy.install import check_inputs
from archon.errors import ProblemsFound


def test_layered_files_are_preflighted_together(tmp_path: Path) -> None:
    # Alone, base.yaml would put the default 14B model on a 12 GB card (FAIL); with the
    # override it serves the 7B model, which fits.
    base = tmp_path / "base.yaml"
    base.write_text('gpu: {profile: "RTX 5070"}\n')
    override = tmp_path / "over.yaml"
    override.write_text("model: {name: Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4}\n")
    assert check_inputs([base, override]).startswith("preflight PASS on RTX 5070")
    with pytest.raises(ProblemsFound) as info:
        check_inputs([base])
    assert all(p.key == "model.maxModelLen" for p in info.value.problems), info.value.line()


def test_timeout_must_be_positive(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    values = tmp_path / "v.yaml"
    values.write_text("{}\n")
    with pytest.raises(SystemExit) as info:
        run_cli("deploy", "-f", str(values), "--timeout", "0")
    assert info.value.code == 2
