"""Any Hub model: the preflight against a loopback simulation of the Hugging Face Hub.

The simulation answers the Hub's own paths, the way huggingface_hub calls them:
`HEAD`/`GET /{repo}/resolve/{revision}/{file}` with `X-Repo-Commit`, `ETag`, `X-Linked-Etag` and
`X-Linked-Size`, range reads (`Range: bytes=a-b`, 206) of a safetensors header,
`GET /api/models/{repo}` and the model search `GET /api/models?search=`; errors carry
`X-Error-Code` (GatedRepo, RepoNotFound, EntryNotFound, RevisionNotFound) as the Hub does. It
serves the config.json files in tests/data/hub and safetensors headers built from them; never
weights. It binds 127.0.0.1 only and counts requests.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import yaml

from archon.errors import UsageError
from archon.preflight import check_values, hub

DATA = Path(__file__).parent / "data" / "hub"
REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_simulation_token"
ELEMENT = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "I32": 4}

Tensor = tuple[str, str, list[int]]


# ---- safetensors headers from a config.json ------------------------------------------------


def _text(config: dict[str, Any]) -> dict[str, Any]:
    text = {**config, **config.get("text_config", {})}
    if text.get("model_type") == "gemma3_text":
        text = {"head_dim": 256, "vocab_size": 262208, **text}
    return text


def _linear(name: str, out: int, inp: int, layout: str, dtype: str) -> list[Tensor]:
    """One linear layer as the checkpoint format stores it."""
    if layout == "awq":  # AutoAWQ GEMM: int4 packed 8 per int32, group 128 scales and zeros
        return [
            (f"{name}.qweight", "I32", [inp, out // 8]),
            (f"{name}.qzeros", "I32", [inp // 128, out // 8]),
            (f"{name}.scales", "F16", [inp // 128, out]),
        ]
    if layout == "fp8-block":  # 128 x 128 block-scaled FP8 (quant_method fp8, weight_block_size)
        return [
            (f"{name}.weight", "F8_E4M3", [out, inp]),
            (f"{name}.weight_scale_inv", "F32", [math.ceil(out / 128), math.ceil(inp / 128)]),
        ]
    return [(f"{name}.weight", dtype, [out, inp])]


def checkpoint_tensors(config: dict[str, Any], layout: str) -> list[Tensor]:
    c = _text(config)
    dtype = "F16" if c.get("torch_dtype") == "float16" else "BF16"
    h, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    hd = c.get("head_dim") or h // heads
    prefix = "language_model.model" if layout == "gemma3" else "model"
    bias = c.get("model_type") == "qwen2"
    out: list[Tensor] = [(f"{prefix}.embed_tokens.weight", dtype, [vocab, h])]
    experts = c.get("num_experts", 0)
    for i in range(layers):
        p = f"{prefix}.layers.{i}"
        for proj, o, n in (("q", heads * hd, h), ("k", kv * hd, h), ("v", kv * hd, h)):
            out += _linear(f"{p}.self_attn.{proj}_proj", o, n, layout, dtype)
            if bias:
                out.append((f"{p}.self_attn.{proj}_proj.bias", dtype, [o]))
        out += _linear(f"{p}.self_attn.o_proj", h, heads * hd, layout, dtype)
        if layout in ("gemma3", "fp8-block"):  # q/k norms (Gemma 3, Qwen3)
            out += [(f"{p}.self_attn.q_norm.weight", dtype, [hd])]
            out += [(f"{p}.self_attn.k_norm.weight", dtype, [hd])]
        if experts:
            m = c["moe_intermediate_size"]
            out.append((f"{p}.mlp.gate.weight", dtype, [experts, h]))
            for e in range(experts):
                q = f"{p}.mlp.experts.{e}"
                out += _linear(f"{q}.gate_proj", m, h, layout, dtype)
                out += _linear(f"{q}.up_proj", m, h, layout, dtype)
                out += _linear(f"{q}.down_proj", h, m, layout, dtype)
        else:
            m = c["intermediate_size"]
            out += _linear(f"{p}.mlp.gate_proj", m, h, layout, dtype)
            out += _linear(f"{p}.mlp.up_proj", m, h, layout, dtype)
            out += _linear(f"{p}.mlp.down_proj", h, m, layout, dtype)
        norms = ["input_layernorm", "post_attention_layernorm"]
        if layout == "gemma3":
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        out += [(f"{p}.{n}.weight", dtype, [h]) for n in norms]
    out.append((f"{prefix}.norm.weight", dtype, [h]))
    if not c.get("tie_word_embeddings", layout == "gemma3"):
        out.append(("lm_head.weight", dtype, [vocab, h]))
    if layout == "gemma3":
        out += _siglip(config["vision_config"], h, dtype)
    return out


def _siglip(v: dict[str, Any], text_hidden: int, dtype: str) -> list[Tensor]:
    """Gemma 3's SigLIP vision tower and projector."""
    h, m = v["hidden_size"], v["intermediate_size"]
    patches = (v["image_size"] // v["patch_size"]) ** 2
    t = "vision_tower.vision_model"
    out: list[Tensor] = [
        (f"{t}.embeddings.patch_embedding.weight", dtype, [h, 3, v["patch_size"], v["patch_size"]]),
        (f"{t}.embeddings.patch_embedding.bias", dtype, [h]),
        (f"{t}.embeddings.position_embedding.weight", dtype, [patches, h]),
        (f"{t}.post_layernorm.weight", dtype, [h]),
        (f"{t}.post_layernorm.bias", dtype, [h]),
        ("multi_modal_projector.mm_input_projection_weight", dtype, [h, text_hidden]),
        ("multi_modal_projector.mm_soft_emb_norm.weight", dtype, [h]),
    ]
    for i in range(v["num_hidden_layers"]):
        p = f"{t}.encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out += [(f"{p}.self_attn.{proj}.weight", dtype, [h, h])]
            out += [(f"{p}.self_attn.{proj}.bias", dtype, [h])]
        out += [(f"{p}.mlp.fc1.weight", dtype, [m, h]), (f"{p}.mlp.fc1.bias", dtype, [m])]
        out += [(f"{p}.mlp.fc2.weight", dtype, [h, m]), (f"{p}.mlp.fc2.bias", dtype, [h])]
        for n in ("layer_norm1", "layer_norm2"):
            out += [(f"{p}.{n}.weight", dtype, [h]), (f"{p}.{n}.bias", dtype, [h])]
    return out


def _nbytes(dtype: str, shape: list[int]) -> int:
    return ELEMENT[dtype] * math.prod(shape)


@dataclass
class SimFile:
    body: bytes  # what GET serves (for a safetensors file: the 8-byte length and the header)
    size: int  # the file's full size (header + tensor data for safetensors)
    lfs: bool = False


@dataclass
class SimRepo:
    repo: str
    commit: str
    gated: bool
    files: dict[str, SimFile] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)
    data_bytes: int = 0  # what the checkpoint's tensors take
    encoder_bytes: int = 0


def build_repo(entry: dict[str, Any]) -> SimRepo:
    repo = entry["repo"]
    config_bytes = (DATA / repo.replace("/", "--") / "config.json").read_bytes()
    config = json.loads(config_bytes)
    commit = hashlib.sha1(repo.encode()).hexdigest()
    sim = SimRepo(repo, commit, bool(entry.get("gated")))
    sim.files["config.json"] = SimFile(config_bytes, len(config_bytes))
    tensors = checkpoint_tensors(config, entry["layout"])
    total = sum(_nbytes(d, s) for _, d, s in tensors)
    shards: int = entry["shards"]
    per_shard = total / shards
    groups: list[list[Tensor]] = [[] for _ in range(shards)]
    running = 0
    for tensor in tensors:
        index = min(shards - 1, int(running // per_shard))
        groups[index].append(tensor)
        running += _nbytes(tensor[1], tensor[2])
    weight_map: dict[str, str] = {}
    for number, group in enumerate(groups, 1):
        name = (
            "model.safetensors"
            if shards == 1
            else f"model-{number:05d}-of-{shards:05d}.safetensors"
        )
        header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for tensor_name, dtype, shape in group:
            size = _nbytes(dtype, shape)
            header[tensor_name] = {
                "dtype": dtype,
                "shape": shape,
                "data_offsets": [offset, offset + size],
            }
            offset += size
            weight_map[tensor_name] = name
            sim.parameters[dtype] = sim.parameters.get(dtype, 0) + math.prod(shape)
            if "vision" in tensor_name or "multi_modal" in tensor_name:
                sim.encoder_bytes += size
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
        body = struct.pack("<Q", len(raw)) + raw
        sim.files[name] = SimFile(body, len(body) + offset, lfs=True)
        sim.data_bytes += offset
    if shards > 1:
        index = {"metadata": {"total_size": sim.data_bytes}, "weight_map": weight_map}
        raw_index = json.dumps(index, indent=2).encode()
        sim.files["model.safetensors.index.json"] = SimFile(raw_index, len(raw_index))
    return sim


# ---- the server --------------------------------------------------------------------------


class HubSimulation:
    """A loopback stand-in for huggingface.co, held to the paths and headers of the real Hub."""

    def __init__(self, repos: dict[str, SimRepo]) -> None:
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        self.delay_s = 0.0
        self._lock = threading.Lock()
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_HEAD(self) -> None:
                sim.answer(self, head=True)

            def do_GET(self) -> None:
                sim.answer(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> HubSimulation:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head and body:
            h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, head: bool) -> None:
        body = json.dumps({"error": code}).encode()
        self._send(
            h,
            status,
            body,
            {"X-Error-Code": code, "X-Error-Message": code, "Content-Type": "application/json"},
            head,
        )

    def answer(self, h: BaseHTTPRequestHandler, *, head: bool) -> None:
        with self._lock:
            self.requests.append((h.command, h.path))
        if self.delay_s:
            time.sleep(self.delay_s)
        url = urlparse(h.path)
        path = unquote(url.path)
        if path == "/api/models":
            self._search(h, parse_qs(url.query), head)
            return
        if path.startswith("/api/models/"):
            self._api(h, path[len("/api/models/") :], head)
            return
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            self._error(h, 404, "NotFound", head)
            return
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        repo = self.repos.get(repo_id)
        if repo is None:  # the Hub answers 401 for a repository it will not show
            self._error(h, 401, "RepoNotFound", head)
            return
        if repo.gated and h.headers.get("authorization") != f"Bearer {TOKEN}":
            self._error(h, 401, "GatedRepo", head)
            return
        if revision not in ("main", repo.commit):
            self._error(h, 404, "RevisionNotFound", head)
            return
        file = repo.files.get(filename)
        headers = {"X-Repo-Commit": repo.commit}
        if file is None:
            self._send(h, 404, b"", {**headers, "X-Error-Code": "EntryNotFound"}, head)
            return
        etag = '"' + hashlib.sha1(file.body).hexdigest() + '"'
        headers["ETag"] = etag
        if file.lfs:
            headers["X-Linked-Etag"] = '"' + hashlib.sha256(file.body).hexdigest() + '"'
            headers["X-Linked-Size"] = str(file.size)
            headers["Accept-Ranges"] = "bytes"
        ranged = h.headers.get("Range") or h.headers.get("range")
        if head:
            self._send(h, 200, b"", {**headers, "Content-Length": str(file.size)}, head=True)
            return
        if ranged and ranged.startswith("bytes="):
            first_text, _, last_text = ranged[len("bytes=") :].partition("-")
            first = int(first_text)
            last = min(int(last_text) if last_text else file.size - 1, file.size - 1)
            if last >= len(file.body):  # only the header is served, never tensor data
                last = len(file.body) - 1
            chunk = file.body[first : last + 1]
            headers["Content-Range"] = f"bytes {first}-{first + len(chunk) - 1}/{file.size}"
            self._send(h, 206, chunk, headers)
            return
        if file.lfs:
            self._error(h, 403, "WeightsNotServed", head)
            return
        self._send(h, 200, file.body, headers)

    def _search(self, h: BaseHTTPRequestHandler, query: dict[str, list[str]], head: bool) -> None:
        """`GET /api/models?search=...&sort=downloads&limit=N`: one page, no `Link` header."""
        text = query.get("search", [""])[0].lower()
        limit = int(query.get("limit", ["1000"])[0])
        found = [
            {"id": repo.repo, "modelId": repo.repo, "private": False, "downloads": 0, "tags": []}
            for repo in self.repos.values()
            if text in repo.repo.lower()
        ][:limit]
        self._send(h, 200, json.dumps(found).encode(), {"Content-Type": "application/json"}, head)

    def _api(self, h: BaseHTTPRequestHandler, repo_id: str, head: bool) -> None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(h, 401, "RepoNotFound", head)
            return
        info = {
            "id": repo.repo,
            "modelId": repo.repo,
            "sha": repo.commit,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "siblings": [{"rfilename": name} for name in sorted(repo.files)],
            "safetensors": {"parameters": repo.parameters, "total": sum(repo.parameters.values())},
        }
        self._send(h, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)


@pytest.fixture(scope="module")
def repos() -> dict[str, SimRepo]:
    entries = yaml.safe_load((DATA / "models.yaml").read_text())["models"]
    return {e["repo"]: build_repo(e) for e in entries}


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
        sim.stop()


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
    entries = yaml.safe_load((DATA / "models.yaml").read_text())["models"]
    repos.update({e["repo"]: build_repo(e) for e in entries})
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
