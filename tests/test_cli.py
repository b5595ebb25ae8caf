"""The CLI as a user meets it: one-line errors, no tracebacks, documented exit codes."""

import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archon", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("lint", "/nonexistent/values.yaml"), 2, "file not found"),
        (("lint",), 2, "the following arguments are required"),
        (("no-such-command",), 2, "invalid choice"),
        (("toolchain", "path", "kubectl2"), 2, "unknown tool 'kubectl2'"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    args: tuple[str, ...], code: int, needle: str
) -> None:
    proc = run(*args)
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_invalid_yaml_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: [\n")
    proc = run("lint", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "invalid YAML at line" in proc.stderr


def test_help_lists_the_commands() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("lint", "render", "validate", "toolchain", "bench", "demo"):
        assert command in proc.stdout
