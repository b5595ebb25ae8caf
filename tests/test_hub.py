"""Any Hub model: the preflight against the loopback simulation of the Hugging Face Hub
(archon.simulation.hub), selected with `HF_ENDPOINT`. It serves the recorded config.json files
and safetensors headers built from them, never weights, and counts requests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from archon.errors import UsageError
from archon.preflight import check_values, hub
from archon.simulation.hub import TOKEN, HubSimulation, SimRepo, load_repos

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def repos() -> dict[str, SimRepo]:
    return load_repos()


@pytest.fixture
def hub_sim(
    repos: dict[str, SimRepo], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HubSimulation]:
    sim = HubSimulation(repos).start()
    monkeypatch.setenv("HF_ENDPOINT", sim.url)
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored token of the machine
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("ARCHON_HUB_TIMEOUT", "5")
    try:
        yield sim
    finally:
        sim.close()


def values(model: str, gpu: str, **settings: Any) -> dict[str, Any]:
    return {
        "gpu": {"profile": gpu, "vendor": "amd" if gpu.startswith("RX") else "nvidia"},
        "model": {"name": model, "quantization": "", "maxModelLen": 8192, **settings},
    }


# ---- the tests ---------------------------------------------------------------------------


def test_simulated_headers_parse_with_huggingface_hub(
    hub_sim: HubSimulation, repos: dict[str, SimRepo]
) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_sim.url)
    meta = api.get_safetensors_metadata("Qwen/Qwen3-30B-A3B-FP8")
    assert meta.sharded and len(meta.files_metadata) == 7
    assert meta.parameter_count == repos["Qwen/Qwen3-30B-A3B-FP8"].parameters
    # the MoE headers are larger than huggingface_hub's first 100 kB range read: a second,
    # exact range read fetched the rest
    ranges = [p for m, p in hub_sim.requests if m == "GET" and "model-0000" in p]
    assert len(ranges) > 7
    info = api.model_info("Qwen/Qwen3-30B-A3B-FP8", expand=["safetensors"])
    assert info.safetensors is not None and info.safetensors.total > 30e9


def test_hub_model_read_once_then_from_the_cache(
    hub_sim: HubSimulation, repos: dict[str, SimRepo]
) -> None:
    """Qwen3-30B-A3B in FP8 on an RTX 5090: a MoE checkpoint whose weights are every expert.

    The catalog knows this model; --refresh reads it from the Hub all the same, and from then
    on the cache, which comes before the catalog, answers."""
    report = check_values(values("Qwen/Qwen3-30B-A3B-FP8", "RTX 5090"), refresh=True)
    first = hub_sim.count
    assert first > 0
    data = report.as_dict()
    assert (
        data["model_source"] == "hub"
        and data["model_commit"] == repos["Qwen/Qwen3-30B-A3B-FP8"].commit
    )
    assert data["architecture"] == "moe"
    sim_gb = repos["Qwen/Qwen3-30B-A3B-FP8"].data_bytes / 1e9
    assert report.spec is not None and report.spec.checkpoint_gb() == pytest.approx(sim_gb)
    assert report.spec.quantization == "fp8"
    assert data["weights_gib"] == pytest.approx(sim_gb * 1e9 / 2**30, abs=0.01)
    # 30.5 B parameters at 1 byte do not leave room for 8192 tokens on a 32 GB card
    assert report.verdict == "FAIL"

    again = check_values(values("Qwen/Qwen3-30B-A3B-FP8", "RTX 5090"))
    assert hub_sim.count == first, "the second preflight asked the Hub again"
    assert again.as_dict()["model_source"] == "cache"
    assert again.as_dict()["weights_gib"] == data["weights_gib"]


def test_offline_works_from_the_cache_and_fails_cleanly_without(
    hub_sim: HubSimulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_values(values("mistralai/Mistral-7B-v0.1", "RTX 4090"))
    seen = hub_sim.count
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = check_values(values("mistralai/Mistral-7B-v0.1", "RTX 4090"))
    assert report.as_dict()["model_source"] == "cache" and hub_sim.count == seen
    with pytest.raises(UsageError) as err:
        check_values(values("HuggingFaceTB/SmolLM2-360M-Instruct", "RTX 4090"))
    assert "HF_HUB_OFFLINE" in err.value.line() and "\n" not in err.value.line()
    assert hub_sim.count == seen


def test_gated_model_needs_hf_token(
    hub_sim: HubSimulation, repos: dict[str, SimRepo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gemma 3 12B on an RX 7800 XT: gated on the Hub."""
    with pytest.raises(UsageError) as err:
        check_values(values("google/gemma-3-12b-it", "RX 7800 XT"), refresh=True)
    line = err.value.line()
    assert "gated" in line and "HF_TOKEN" in line and "\n" not in line
    assert err.value.key == "model.name"
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(UsageError, match="HF_TOKEN has no access"):
        check_values(values("google/gemma-3-12b-it", "RX 7800 XT"), refresh=True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    report = check_values(values("google/gemma-3-12b-it", "RX 7800 XT"), refresh=True)
    assert report.as_dict()["model_source"] == "hub"
    assert report.spec is not None and report.spec.family == "sliding-window"
    # 40 of 48 layers slide over 1024 tokens (pattern 6: every sixth layer is global)
    assert report.estimate is not None and report.estimate.sliding_layers == 40
    # the checkpoint's size carries the SigLIP vision tower the text-only estimate leaves out
    gemma = repos["google/gemma-3-12b-it"]
    assert gemma.encoder_bytes > 0.8e9
    assert report.spec.checkpoint_gb() == pytest.approx(gemma.data_bytes / 1e9)
    from archon.preflight.catalog import load_catalog

    # the catalog's estimate counts the vision tower from the same vision_config
    listed = load_catalog().find("google/gemma-3-12b-it")
    assert listed.encoder_params * 2 == pytest.approx(gemma.encoder_bytes, rel=0.02)
    assert listed.checkpoint_gb() == pytest.approx(report.spec.checkpoint_gb(), rel=0.01)


def test_unknown_repo_missing_file_and_revision(
    hub_sim: HubSimulation, repos: dict[str, SimRepo]
) -> None:
    with pytest.raises(UsageError) as err:
        check_values(values("example/not-on-the-hub", "RTX 5080"))
    assert "not found on the Hub" in err.value.line() and err.value.key == "model.name"
    del repos["mistralai/Mistral-7B-v0.1"].files["config.json"]
    try:
        with pytest.raises(UsageError) as missing:
            check_values(values("mistralai/Mistral-7B-v0.1", "RTX 5080"))
        assert "has no config.json" in missing.value.line()
    finally:
        repos.clear()  # rebuilt for the next module user
    repos.update(load_repos())
    bad = values("mistralai/Mistral-7B-v0.1", "RTX 5080")
    bad["model"]["revision"] = "v9"
    with pytest.raises(UsageError) as revision:
        check_values(bad)
    assert revision.value.key == "model.revision"


def test_slow_hub_times_out_within_the_limit(
    hub_sim: HubSimulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_sim.delay_s = 3.0
    monkeypatch.setenv("ARCHON_HUB_TIMEOUT", "0.5")
    started = time.monotonic()
    with pytest.raises(UsageError) as err:
        check_values(values("mistralai/Mistral-7B-v0.1", "RTX 5080"))
    elapsed = time.monotonic() - started
    # the limit ended the wait: the slow answer itself was never awaited
    assert elapsed < hub_sim.delay_s, f"a 0.5 s limit waited {elapsed:.1f} s for the Hub"
    assert "ARCHON_HUB_TIMEOUT" in err.value.line() and "\n" not in err.value.line()


def test_single_file_checkpoint_and_awq(hub_sim: HubSimulation, repos: dict[str, SimRepo]) -> None:
    small = check_values(values("HuggingFaceTB/SmolLM2-360M-Instruct", "RTX 4060 Ti 16GB"))
    assert small.spec is not None
    assert small.spec.checkpoint_gb() == pytest.approx(
        repos["HuggingFaceTB/SmolLM2-360M-Instruct"].data_bytes / 1e9
    )
    assert small.verdict in ("PASS", "WARN")
    awq = check_values(values("Qwen/Qwen2.5-7B-Instruct-AWQ", "RTX 4060 Ti 16GB"), refresh=True)
    assert awq.spec is not None and awq.spec.quantization == "awq"
    assert awq.spec.origin == "hub" and not awq.spec.weights_estimated
    # the same architecture and size as the catalog's entry for this repository
    from archon.preflight.catalog import load_catalog

    listed = load_catalog().find("Qwen/Qwen2.5-7B-Instruct-AWQ")
    assert awq.spec.checkpoint_gb() == pytest.approx(listed.checkpoint_gb(), rel=0.03)


def test_catalog_models_never_ask_the_hub(hub_sim: HubSimulation) -> None:
    report = check_values(values("Qwen/Qwen2.5-Coder-7B-Instruct", "RTX 5080"))
    assert report.as_dict()["model_source"] == "catalog" and hub_sim.count == 0


def test_cli_reports_the_source_and_cached_run_loads_no_hub_client(
    hub_sim: HubSimulation, tmp_path: Path
) -> None:
    file = tmp_path / "v.yaml"
    file.write_text(yaml.safe_dump(values("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "RTX 5090")))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "tools")}
    cmd = [sys.executable, "-m", "archon", "preflight", "-f", str(file), "--refresh"]
    started = time.monotonic()
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    uncached_s = time.monotonic() - started
    assert first.returncode in (0, 1), first.stderr
    assert "model facts from" in first.stdout and "Hugging Face Hub (commit" in first.stdout
    seen = hub_sim.count
    script = (
        "import sys, json, contextlib, io\n"
        "from archon.cli.main import main\n"
        "out = io.StringIO()\n"
        f"with contextlib.redirect_stdout(out): main(['preflight', '-f', {str(file)!r}, "
        "'--output', 'json'])\n"
        "data = json.loads(out.getvalue())\n"
        "print(data['model_source'], 'huggingface_hub' in sys.modules)\n"
    )
    second = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert second.stdout.split() == ["cache", "False"]
    assert hub_sim.count == seen
    # Wall-clock targets live in benchmarks; this bound only catches a hang.
    assert uncached_s < 30


def test_hub_cache_is_keyed_by_repo_and_commit(
    hub_sim: HubSimulation, repos: dict[str, SimRepo]
) -> None:
    model = hub.lookup("mistralai/Mistral-7B-v0.1")
    commit = repos["mistralai/Mistral-7B-v0.1"].commit
    assert model.commit == commit and model.origin == "hub"
    stored = hub.hub_cache_dir() / "models--mistralai--Mistral-7B-v0.1" / "archon"
    assert (stored / f"{commit}.json").is_file()
    by_commit = hub.cached("mistralai/Mistral-7B-v0.1", commit)
    assert by_commit is not None and by_commit.checkpoint_bytes == model.checkpoint_bytes
    assert hub.cached("mistralai/Mistral-7B-v0.1", "v2") is None


def test_a_hub_model_that_does_not_fit_gets_a_4_bit_build_from_the_hub(
    hub_sim: HubSimulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mistral 7B v0.1 in bf16 on a 16 GB card: the catalog knows no 4-bit build of it, the
    Hub's search does, and the build is read (headers only) and estimated like any model."""
    report = check_values(values("mistralai/Mistral-7B-v0.1", "RTX 5080"))
    assert report.verdict == "FAIL"
    builds = [f for f in report.fixes if f.key == "model.name"]
    assert [f.value for f in builds] == ["TheBloke/Mistral-7B-v0.1-AWQ"]
    assert builds[0].estimate.starts and builds[0].estimate.weights_gib < 5
    assert ("GET", "/api/models?search=Mistral-7B-v0.1&sort=downloads&limit=50") in {
        (m, p) for m, p in hub_sim.requests
    }
    # the search and the build's figures are cached: offline, the same suggestion, no request
    seen = hub_sim.count
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = check_values(values("mistralai/Mistral-7B-v0.1", "RTX 5080"))
    assert hub_sim.count == seen
    assert [f.value for f in again.fixes if f.key == "model.name"] == [
        "TheBloke/Mistral-7B-v0.1-AWQ"
    ]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with its size and mtime (links not followed)."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_the_server_reads_the_model_cache_offline_without_writing(
    hub_sim: HubSimulation, repos: dict[str, SimRepo], tmp_path: Path
) -> None:
    """The chart mounts the model cache read-only where vLLM serves. That holds only if
    huggingface_hub, as the serving container's environment sets it up (HF_HOME on the cache,
    HF_HUB_OFFLINE=1), resolves the model without writing there: no lock, no ref, no metadata.
    The download container's environment fills the cache first, from the loopback Hub."""
    from archon.render import render_chart

    objects = render_chart([]).objects
    server = next(
        o for o in objects if o["kind"] == "Deployment" and "-server" in o["metadata"]["name"]
    )
    spec = server["spec"]["template"]["spec"]
    vllm = next(c for c in spec["containers"] if c["name"] == "vllm")
    mounts = {m["mountPath"]: m for m in vllm["volumeMounts"]}
    assert mounts["/models"].get("readOnly") is True

    local = {"/models": tmp_path / "models", "/home": tmp_path / "home"}

    def localized(env: list[dict[str, Any]]) -> dict[str, str]:
        out = {}
        for item in env:
            value = str(item.get("value", ""))
            for mount, path in local.items():
                if value.startswith(mount):
                    value = str(path) + value[len(mount) :]
            if "value" in item:
                out[item["name"]] = value
        return out

    repo = "Qwen/Qwen3-30B-A3B-FP8"
    fetch = (
        "import sys; from huggingface_hub import hf_hub_download; "
        f"print(hf_hub_download({repo!r}, 'config.json'))"
    )
    base = {"PATH": os.environ["PATH"], "HF_ENDPOINT": hub_sim.url}
    download = subprocess.run(
        [sys.executable, "-c", fetch],
        env={**base, "HF_HOME": str(local["/models"])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert download.returncode == 0, download.stderr
    serving_env = localized(vllm.get("env", []))
    assert serving_env["HF_HUB_OFFLINE"] == "1"
    assert serving_env["HF_HOME"] == str(local["/models"])
    before = _tree(local["/models"])
    for path in (local["/models"], *local["/models"].rglob("*")):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~0o222)
    requests = len(hub_sim.requests)
    served = subprocess.run(
        [sys.executable, "-c", fetch],
        env={**base, **serving_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode == 0, served.stderr
    assert served.stdout.strip() == download.stdout.strip(), "the same cached file"
    assert _tree(local["/models"]) == before, "nothing written to the read-only cache"
    assert len(hub_sim.requests) == requests, "offline: the Hub was not asked"


def test_the_simulation_serves_headers_never_weights(
    hub_sim: HubSimulation, repos: dict[str, SimRepo]
) -> None:
    import urllib.error
    import urllib.request

    shard = hub_sim.url + "/Qwen/Qwen3-30B-A3B-FP8/resolve/main/model-00001-of-00007.safetensors"
    served = repos["Qwen/Qwen3-30B-A3B-FP8"].files["model-00001-of-00007.safetensors"]
    with pytest.raises(urllib.error.HTTPError) as whole:
        urllib.request.urlopen(shard, timeout=5)
    assert whole.value.code == 403
    ranged = urllib.request.Request(shard, headers={"Range": "bytes=0-999999999"})
    with urllib.request.urlopen(ranged, timeout=5) as reply:
        body = reply.read()
        assert reply.status == 206
        assert reply.headers["Content-Range"] == f"bytes 0-{len(served.body) - 1}/{served.size}"
    assert body == served.body and len(body) < served.size  # the header, cut before the tensors
    assert hub_sim.url.startswith("http://127.0.0.1:")
