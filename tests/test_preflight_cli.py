"""`archon preflight` end to end: verdicts, exit codes, one-line errors, JSON contract, speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from archon.errors import UsageError
from archon.preflight import check_values

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "preflight"

# The seed's defaults, as the chart's values.yaml sets them (fixture: independent of that file).
SEED: dict[str, Any] = {
    "image": {"repository": "vllm/vllm-openai", "tag": "v0.19.1"},
    "gpu": {
        "vendor": "nvidia",
        "count": 1,
        "profile": "",
        "amd": {"image": {"repository": "vllm/vllm-openai-rocm", "tag": "v0.19.1"}},
    },
    "model": {
        "name": "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4",
        "quantization": "gptq",
        "dtype": "",
        "maxModelLen": 8192,
        "gpuMemoryUtilization": 0.9,
        "maxNumSeqs": None,
        "maxNumBatchedTokens": None,
        "kvCacheDtype": "auto",
        "enforceEager": False,
        "tensorParallelSize": 1,
        "extraConfig": {},
        "extraArgs": [],
    },
}


pytestmark = pytest.mark.usefixtures("offline_hub_cache")


def with_model(**model: Any) -> dict[str, Any]:
    return {**SEED, "model": {**SEED["model"], **model}}


def test_library_seed_fails_on_5070_and_passes_on_5080() -> None:
    fail = check_values(SEED, gpu="RTX 5070")
    assert fail.verdict == "FAIL"
    assert fail.problems[0].key == "model.maxModelLen"
    assert "RTX 5070 (12227 MiB)" in fail.problems[0].message and "16 GB" in fail.problems[0].fix
    ok = check_values(SEED, gpu="rtx5080")
    assert ok.verdict == "PASS" and ok.problems == []
    data = ok.as_dict()
    for key in (
        "verdict",
        "gpu",
        "weights_gib",
        "kv_cache_gib",
        "kv_cache_tokens",
        "max_concurrency",
        "max_model_len_fit",
        "problems",
    ):
        assert key in data
    assert data["kv_cache_tokens"] >= 8192 and data["gpu"] == "RTX 5080"


def test_library_takes_gpu_profile_from_values_and_raises_without_one() -> None:
    values = {**SEED, "gpu": {**SEED["gpu"], "profile": "RTX 5080"}}
    assert check_values(values).gpu == "RTX 5080"
    with pytest.raises(UsageError) as err:
        check_values(SEED)
    assert (
        err.value.line() == "gpu.profile: not set; fix: pass --gpu NAME or set gpu.profile "
        "(see `archon gpus`)"
    )


def test_cli_fail_and_pass(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fail = run_cli("preflight", "--gpu", "RTX 5070")
    assert fail.code == 1 and "preflight: FAIL" in fail.out
    assert "FAIL model.maxModelLen: 8192 needs 1.50 GiB of KV cache" in fail.out
    ok = run_cli("preflight", "--gpu", "RTX 5080", "--output", "json")
    assert ok.code == 0
    data = json.loads(ok.out)
    assert data["verdict"] == "PASS" and data["kv_cache_tokens"] > 8192
    # 9.98 GB of checkpoint (9.29 GiB) and the rope cache vLLM builds at load (8 MiB)
    assert data["weights_gib"] == pytest.approx(9.30, abs=0.005)
    assert data["problems"] == []


def test_cli_warns_on_low_concurrency(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    values = tmp_path / "v.yaml"
    values.write_text("model:\n  maxModelLen: 16384\n")
    result = run_cli("preflight", "-f", str(values), "--gpu", "RTX 5080")
    assert result.code == 0 and "preflight: WARN" in result.out
    assert "WARN " + str(values) + ": model.maxModelLen:" in result.out


def test_cli_warns_when_a_desktop_session_leaves_too_little(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    values = tmp_path / "v.yaml"
    values.write_text("model:\n  gpuMemoryUtilization: 0.97\n")
    result = run_cli("preflight", "-f", str(values), "--gpu", "RTX 5080", "--output", "json")
    data = json.loads(result.out)
    keys = {(p["key"], p["level"]) for p in data["problems"]}
    assert ("model.gpuMemoryUtilization", "WARN") in keys


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        ((), 2, "gpu.profile: not set; fix: pass --gpu NAME or set gpu.profile"),
        (("--gpu", "RTX 9999"), 2, "--gpu: unknown GPU 'RTX 9999'"),
        (("--gpu", "rtx5080", "--model-config", "missing.json"), 2, "missing.json: file not found"),
    ],
)
def test_cli_unusable_input_exit_2(run_cli, args, code, expected) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("preflight", *args)
    assert result.code == code
    assert result.err.strip().startswith(expected) or expected in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_cli_unknown_model_exit_2(run_cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a model outside the catalog: the Hub is next
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path / "cache"))
    values = tmp_path / "v.yaml"
    values.write_text("model:\n  name: example/not-a-model\n")
    result = run_cli("preflight", "-f", str(values), "--gpu", "RTX 5080")
    assert result.code == 2
    assert result.err.startswith(
        f"{values}: model.name: example/not-a-model@main is in neither the catalog nor the "
        "Archon cache, and HF_HUB_OFFLINE is set"
    )
    bare = tmp_path / "bare.yaml"
    bare.write_text("model:\n  name: not-a-repo-id\n")
    result = run_cli("preflight", "-f", str(bare), "--gpu", "RTX 5080")
    assert result.code == 2 and "model 'not-a-repo-id' is not in the catalog" in result.err


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ({"gpuMemoryUtilization": 1.5}, "model.gpuMemoryUtilization"),
        ({"gpuMemoryUtilization": 0}, "model.gpuMemoryUtilization"),
        ({"maxModelLen": -8}, "model.maxModelLen"),
        ({"maxNumSeqs": "many"}, "model.maxNumSeqs"),
    ],
)
def test_cli_bad_settings_exit_1_with_one_line(run_cli, tmp_path: Path, model, key) -> None:  # type: ignore[no-untyped-def]
    import yaml

    values = tmp_path / "v.yaml"
    values.write_text(yaml.safe_dump({"model": model}))
    result = run_cli("preflight", "-f", str(values), "--gpu", "RTX 5080")
    assert result.code == 1
    lines = [line for line in result.out.splitlines() if line.startswith("FAIL ")]
    assert lines and lines[0].startswith(f"FAIL {values}: {key}: ") and "; fix: " in lines[0]
    assert "Traceback" not in result.out + result.err


def test_cli_model_config_for_a_model_outside_the_catalog(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    values = tmp_path / "v.yaml"
    values.write_text("model:\n  name: example/tiny\n  quantization: ''\n")
    result = run_cli(
        "preflight",
        "-f",
        str(values),
        "--gpu",
        "RTX 4060 Ti 16GB",
        "--model-config",
        str(DATA / "tiny-config.json"),
        "--weights-gib",
        "2.3",
        "--output",
        "json",
    )
    assert result.code == 0, result.out + result.err
    data = json.loads(result.out)
    # the given size, plus the rope cache vLLM builds at load (positions x head dim x 2 B)
    config = json.loads((DATA / "tiny-config.json").read_text(encoding="utf-8"))
    rope = config["max_position_embeddings"] * 64 * 2 / 2**30
    assert data["weights_gib"] == pytest.approx(2.3 + rope, abs=0.005)
    assert data["kv_bytes_per_token"] == 2 * 16 * 8 * 64 * 2


def test_cli_amd_card_needs_the_rocm_image(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("preflight", "--gpu", "RX 7900 XTX", "--output", "json")
    data = json.loads(result.out)
    assert result.code == 1
    assert {"gpu.vendor", "gpu.amd.image.repository"} <= {p["key"] for p in data["problems"]}


def test_cli_subprocess_one_line_no_traceback_and_fast() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tools")}
    cmd = [sys.executable, "-m", "archon", "preflight", "--gpu", "nope"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    # What keeps the preflight fast (its timing target lives in `archon bench preflight`): the
    # command never imports the cluster, helm or HTTP stacks.
    script = (
        "import argparse, contextlib, io, sys\n"
        "from archon.cli import preflight\n"
        "p=argparse.ArgumentParser(); s=p.add_subparsers(); preflight.register(s)\n"
        "a=p.parse_args(['preflight','--gpu','rtx5080','--output','json'])\n"
        "with contextlib.redirect_stdout(io.StringIO()): a.handler(a)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('kubernetes', 'httpx', 'httpx2', 'huggingface_hub', 'litellm', 'archon'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    loaded = set(done.stdout.split())
    assert "archon.preflight.report" in loaded
    heavy = {
        m
        for m in loaded
        if m.split(".")[0] in ("kubernetes", "httpx", "httpx2", "huggingface_hub", "litellm")
    }
    heavy |= {m for m in loaded if m.startswith(("archon.helm", "archon.kube", "archon.deploy"))}
    assert not heavy


def test_failures_holds_only_fail_level_problems() -> None:
    values = with_model(quantization="awq", gpuMemoryUtilization=0.97)
    report = check_values(values, gpu="RTX 5080")
    levels = {f.problem.key: f.level for f in report.findings}
    assert report.verdict == "FAIL"
    assert levels["model.quantization"] == "FAIL" and levels["model.gpuMemoryUtilization"] == "WARN"
    assert [p.key for p in report.failures] == ["model.quantization"]
    assert len(report.problems) > len(report.failures)


def test_values_the_schema_refuses_fail_without_figures(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: 5\n")
    result = run_cli("preflight", "-f", str(bad), "--gpu", "RTX 5080", "--output", "json")
    assert result.code == 1
    report = json.loads(result.out)
    assert report["verdict"] == "FAIL" and report["kv_cache_tokens"] is None
    assert report["problems"][0]["key"] == "model"
    assert report["problems"][0]["rule"] == "schema"


def test_unknown_gpu_in_a_file_names_the_file(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    values = tmp_path / "v.yaml"
    values.write_text('gpu: {profile: "RTX 9999"}\n')
    result = run_cli("preflight", "-f", str(values))
    assert result.code == 2
    assert result.err.startswith(f"{values}: gpu.profile: unknown GPU 'RTX 9999'")


def test_json_carries_every_estimate_figure(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from archon.preflight.report import ESTIMATE_KEYS

    values = tmp_path / "v.yaml"
    values.write_text("gpu:\n  profile: RTX 5080\n")
    result = run_cli("preflight", "-f", str(values), "--output", "json")
    data = json.loads(result.out)
    assert {"memory_held_gib", "kv_check", "local_experts"} <= set(data)
    assert set(ESTIMATE_KEYS) <= set(data)
    # every figure comes from the estimate's own dictionary or attributes: none is always null
    report = check_values(with_model(), gpu="RTX 5080")
    assert report.estimate is not None
    figures = report.estimate.as_dict()
    for key in ESTIMATE_KEYS:
        if key in figures:
            assert data[key] == figures[key], key
