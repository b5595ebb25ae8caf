"""A simulation of the Hugging Face Hub on 127.0.0.1, for the preflight's Hub reads.

The preflight reads a model's `config.json` and its safetensors headers from the Hub; the tests
and `archon bench hub` point `HF_ENDPOINT` here instead. The simulation answers the Hub's own
paths, the way huggingface_hub calls them:

    HEAD/GET /{repo}/resolve/{revision}/{file}   X-Repo-Commit, ETag, X-Linked-Etag,
                                                 X-Linked-Size; `Range: bytes=a-b` -> 206
    GET      /api/models/{repo}                  sha, gated, siblings, safetensors counts
    GET      /api/models?search=...&limit=N      the model search (one page)

Errors carry `X-Error-Code` (GatedRepo, RepoNotFound, EntryNotFound, RevisionNotFound) as the
Hub's do; a repository it does not serve gets 401, as the Hub answers for one it will not show.
It serves the public `config.json` files recorded in the package data (`data/hub`) and
safetensors headers built from them in each checkpoint format; never weights: a range read
stops at the end of the header and a whole weights file is refused (403). It counts requests, so
a caller can check that a cached preflight made none.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import yaml

from archon.simulation.loopback import LOOPBACK, LoopbackServer

TOKEN = "hf_simulation_token"  # the one token that opens the gated repositories
ELEMENT = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "I32": 4}  # bytes per element

Tensor = tuple[str, str, list[int]]  # name, safetensors dtype, shape


def data() -> Traversable:
    """The recorded Hub data: `models.yaml` and one `org--name/config.json` per repository."""
    return resources.files("archon") / "data" / "hub"


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
    """Every tensor a checkpoint of `config` holds in `layout` (dense, awq, fp8-block, gemma3)."""
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
    """One repository of `models.yaml`: its config.json, and its checkpoint's safetensors headers
    split into `shards` files (with an index when there is more than one)."""
    repo = entry["repo"]
    config_bytes = (data() / repo.replace("/", "--") / "config.json").read_bytes()
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
        listing = {"metadata": {"total_size": sim.data_bytes}, "weight_map": weight_map}
        raw_index = json.dumps(listing, indent=2).encode()
        sim.files["model.safetensors.index.json"] = SimFile(raw_index, len(raw_index))
    return sim


def load_repos() -> dict[str, SimRepo]:
    """Every repository the recorded data describes, by `org/name`."""
    entries = yaml.safe_load((data() / "models.yaml").read_text(encoding="utf-8"))["models"]
    return {e["repo"]: build_repo(e) for e in entries}


# ---- the server --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # the simulation counts requests instead of printing them

    def do_HEAD(self) -> None:
        self.server.simulation.answer(self, head=True)

    def do_GET(self) -> None:
        self.server.simulation.answer(self, head=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, simulation: HubSimulation, port: int) -> None:
        self.simulation = simulation
        super().__init__((LOOPBACK, port), _Handler)


class HubSimulation(LoopbackServer):
    """A loopback stand-in for huggingface.co, held to the paths and headers of the real Hub.

    `repos` may be changed while it runs (a test removes a file); `delay_s` delays every answer
    (a slow Hub); `requests` lists (method, path) of every request in order."""

    def __init__(self, repos: dict[str, SimRepo] | None = None, *, port: int = 0) -> None:
        self.repos = load_repos() if repos is None else repos
        self.requests: list[tuple[str, str]] = []
        self.delay_s = 0.0
        self._lock = threading.Lock()
        super().__init__(_Server(self, port), "archon-hub-simulation")

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
        headers["ETag"] = '"' + hashlib.sha1(file.body).hexdigest() + '"'
        if file.lfs:
            headers["X-Linked-Etag"] = '"' + hashlib.sha256(file.body).hexdigest() + '"'
            headers["X-Linked-Size"] = str(file.size)
            headers["Accept-Ranges"] = "bytes"
        ranged = h.headers.get("Range")
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


@contextmanager
def serve_hub(repos: dict[str, SimRepo] | None = None, *, port: int = 0) -> Iterator[HubSimulation]:
    """Run the Hub simulation for the duration of a `with` block."""
    simulation = HubSimulation(repos, port=port).start()
    try:
        yield simulation
    finally:
        simulation.close()
