"""Any model on the Hugging Face Hub: its config.json and checkpoint size, read once and cached.

Nothing here downloads weights. `config.json` comes through `hf_hub_download`; the checkpoint
size per dtype through `get_safetensors_metadata`, which range-reads only the safetensors
headers (8-byte length + JSON of every tensor's dtype, shape and offsets). Both honour
`HF_ENDPOINT` and `HF_TOKEN`.

What was read, with the figures computed from it, is cached under the Archon cache, keyed by
repository and commit (`<cache>/hub/models--org--name/archon/<commit>.json`, beside the
`refs/<revision>` files huggingface_hub keeps there). huggingface_hub does not cache the header
range reads, so this file is what lets a second preflight make no request at all and
`HF_HUB_OFFLINE=1` work. huggingface_hub is imported only when the Hub is really asked: a
preflight served by the catalog or the cache never loads it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archon.errors import UsageError
from archon.paths import cache_dir
from archon.preflight.catalog import GB, ModelSpec, spec_from_config

# Seconds to wait for the Hub to answer one request; a preflight must not hang on a slow Hub.
DEFAULT_TIMEOUT_S = 10.0
CACHE_FORMAT = 1
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Bytes per element of the safetensors dtypes (the safetensors format specification).
DTYPE_BYTES = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
# How 4-bit builds name themselves on the Hub (after the base model's name).
_FOUR_BIT = re.compile(r"(awq|gptq|int4|w4a16|4bit|4-bit|nf4)", re.IGNORECASE)
_QUANT_SUFFIX = re.compile(
    r"[-_.](fp8|awq|gptq|int[48]|w4a16|w8a8|w8a16|bnb|4bit|8bit|quantized|mxfp4)([-_.].*)?$",
    re.IGNORECASE,
)
# Tensors of a multimodal checkpoint that belong to the vision/audio encoder, not the LLM.
_ENCODER = re.compile(r"(vision|visual|image|audio|multi_modal_projector|mm_projector)")


@dataclass
class HubModel:
    """What the preflight needs of a Hub model, as read or as cached."""

    repo: str
    revision: str
    commit: str
    config: dict[str, Any]
    checkpoint_bytes: int | None
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    encoder_bytes: int = 0
    origin: str = "hub"  # "hub" (read now) or "cache"

    def as_cache(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "repo": self.repo,
            "revision": self.revision,
            "commit": self.commit,
            "config": self.config,
            "checkpoint_bytes": self.checkpoint_bytes,
            "bytes_by_dtype": self.bytes_by_dtype,
            "encoder_bytes": self.encoder_bytes,
        }


def hub_cache_dir() -> Path:
    return cache_dir() / "hub"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def timeout_s() -> float:
    text = os.environ.get("ARCHON_HUB_TIMEOUT", "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise UsageError(
            f"{text!r} is not a number of seconds",
            key="ARCHON_HUB_TIMEOUT",
            fix="set ARCHON_HUB_TIMEOUT to seconds, e.g. 10",
        ) from None
    return value if value > 0 else DEFAULT_TIMEOUT_S


def _repo_dir(repo: str) -> Path:
    # huggingface_hub's own layout: models--org--name
    return hub_cache_dir() / ("models--" + repo.replace("/", "--"))


def _commit_for(repo: str, revision: str) -> str | None:
    if _COMMIT.match(revision):
        return revision
    ref = _repo_dir(repo) / "refs" / revision
    try:
        text = ref.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text if _COMMIT.match(text) else None


def cached(repo: str, revision: str = "main") -> HubModel | None:
    """The figures of an earlier read of repo at revision, without any request."""
    commit = _commit_for(repo, revision)
    if commit is None:
        return None
    file = _repo_dir(repo) / "archon" / f"{commit}.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return None
    config = data.get("config")
    if not isinstance(config, dict):
        return None
    size = data.get("checkpoint_bytes")
    by_dtype = data.get("bytes_by_dtype") or {}
    return HubModel(
        repo=repo,
        revision=revision,
        commit=commit,
        config=config,
        checkpoint_bytes=size if isinstance(size, int) and size > 0 else None,
        bytes_by_dtype={str(k): int(v) for k, v in by_dtype.items()},
        encoder_bytes=int(data.get("encoder_bytes") or 0),
        origin="cache",
    )


def _store(model: HubModel) -> None:
    folder = _repo_dir(model.repo) / "archon"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{model.commit}.json.tmp"
    tmp.write_text(json.dumps(model.as_cache(), indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(folder / f"{model.commit}.json")
    if not _COMMIT.match(model.revision):
        # the download went by commit, so huggingface_hub did not record which commit the
        # branch or tag names; the next (possibly offline) lookup starts from this file
        ref = _repo_dir(model.repo) / "refs" / model.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(model.commit, encoding="utf-8")


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def _endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _translate(exc: BaseException, repo: str, revision: str, what: str) -> UsageError:
    """One line for whatever the Hub (or the way to it) answered."""
    from huggingface_hub import errors

    endpoint = _endpoint()
    if isinstance(exc, errors.GatedRepoError):
        if _token():
            return UsageError(
                f"{repo} is gated on the Hub and HF_TOKEN has no access to it",
                key="model.name",
                fix=f"accept the model's terms on {endpoint}/{repo} with the account of HF_TOKEN",
            )
        return UsageError(
            f"{repo} is gated on the Hub and HF_TOKEN is not set",
            key="model.name",
            fix="export HF_TOKEN=<a token of an account that accepted the model's terms>",
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return UsageError(
            f"{repo} has no revision {revision!r} on the Hub",
            key="model.revision",
            fix="set model.revision to a branch, tag or commit of the repository",
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return UsageError(
            f"{repo} was not found on the Hub at {endpoint} (or it is private)",
            key="model.name",
            fix="check model.name; for a private repository export HF_TOKEN",
        )
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return UsageError(
            f"{repo}@{revision} has no {what} on the Hub",
            key="model.name",
            fix="pass --model-config config.json (and --weights-gib N) for this model",
        )
    if isinstance(exc, errors.LocalEntryNotFoundError | errors.OfflineModeIsEnabled):
        return UsageError(
            f"could not reach the Hub at {endpoint} for {repo} within {timeout_s():g} s, and "
            "it is not in the cache",
            key="model.name",
            fix="check the network or HF_ENDPOINT, raise ARCHON_HUB_TIMEOUT, or pass "
            "--model-config config.json",
        )
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return UsageError(
            f"the Hub at {endpoint} answered {status} for {repo} ({what})",
            key="model.name",
            fix="retry later, or pass --model-config config.json and --weights-gib N",
        )
    return UsageError(
        f"could not read {what} of {repo} from the Hub at {endpoint} within {timeout_s():g} s "
        f"({exc.__class__.__name__})",
        key="model.name",
        fix="check the network or HF_ENDPOINT, raise ARCHON_HUB_TIMEOUT, or pass "
        "--model-config config.json",
    )


def _network_errors() -> tuple[type[BaseException], ...]:
    """What a request can raise on the way to the Hub (huggingface_hub's HTTP client)."""
    from huggingface_hub import errors

    found: list[type[BaseException]] = [
        errors.HfHubHTTPError,
        errors.EntryNotFoundError,
        errors.OfflineModeIsEnabled,
        OSError,
        TimeoutError,
    ]
    for module in ("httpx2", "httpx"):
        mod = sys.modules.get(module)
        if mod is not None:
            found.append(mod.HTTPError)
            found.append(mod.TransportError)
    return tuple(found)


def weights_from_headers(files: dict[str, Any]) -> tuple[int, dict[str, int], int]:
    """(total bytes, bytes per dtype, encoder bytes) from parsed safetensors headers."""
    by_dtype: dict[str, int] = {}
    encoder = 0
    for meta in files.values():
        for name, tensor in meta.tensors.items():
            start, end = tensor.data_offsets
            size = int(end) - int(start)
            by_dtype[tensor.dtype] = by_dtype.get(tensor.dtype, 0) + size
            if _ENCODER.search(name):
                encoder += size
    return sum(by_dtype.values()), by_dtype, encoder


def read(repo: str, revision: str = "main", *, progress: bool = True) -> HubModel:
    """Read config.json and the safetensors headers of repo@revision from the Hub; cache them."""
    if progress and sys.stderr.isatty():  # scripts get the one-line answer only
        print(f"reading {repo}@{revision} from the Hub ({_endpoint()})...", file=sys.stderr)
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import NotASafetensorsRepoError, SafetensorsParsingError
    from huggingface_hub.utils.tqdm import disable_progress_bars

    disable_progress_bars()
    limit = timeout_s()
    caught = _network_errors()
    try:
        # One HEAD without retries names the commit: hf_hub_download on its own would retry a
        # slow Hub with a 60 s timeout, and a preflight must answer within ARCHON_HUB_TIMEOUT.
        head = get_hf_file_metadata(
            hf_hub_url(repo, "config.json", revision=revision, endpoint=_endpoint()),
            token=_token(),
            timeout=limit,
        )
        commit = head.commit_hash or revision
        path = Path(
            hf_hub_download(
                repo,
                "config.json",
                revision=commit,
                cache_dir=hub_cache_dir(),
                token=_token(),
                endpoint=_endpoint(),
                etag_timeout=limit,
            )
        )
    except caught as exc:
        raise _translate(exc, repo, revision, "config.json") from None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise UsageError(
            f"config.json of {repo}@{commit[:12]} is not a JSON object",
            key="model.name",
            fix="pass --model-config config.json for this model",
        )
    api = HfApi(endpoint=_endpoint(), token=_token())
    size: int | None = None
    by_dtype: dict[str, int] = {}
    encoder = 0
    try:
        meta = api.get_safetensors_metadata(repo, revision=commit, timeout=limit)
        size, by_dtype, encoder = weights_from_headers(meta.files_metadata)
    except (NotASafetensorsRepoError, SafetensorsParsingError):
        size = None  # no safetensors: the size is estimated from the parameter count
    except caught as exc:
        raise _translate(exc, repo, revision, "the safetensors headers") from None
    model = HubModel(
        repo=repo,
        revision=revision,
        commit=commit if _COMMIT.match(commit) else revision,
        config=config,
        checkpoint_bytes=size or None,
        bytes_by_dtype=by_dtype,
        encoder_bytes=encoder,
    )
    try:
        _store(model)
    except OSError as exc:  # a read-only cache costs the next run a request, not this one
        print(f"note: could not cache {repo} ({exc.strerror})", file=sys.stderr)
    return model


def lookup(repo: str, revision: str = "main", *, refresh: bool = False) -> HubModel:
    """The cache, else the Hub (unless HF_HUB_OFFLINE is set)."""
    if not refresh:
        hit = cached(repo, revision)
        if hit is not None:
            return hit
    if offline():
        raise UsageError(
            f"{repo}@{revision} is in neither the catalog nor the Archon cache, and "
            "HF_HUB_OFFLINE is set",
            key="model.name",
            fix="run the preflight once online (it caches the figures), or pass "
            "--model-config config.json",
        )
    return read(repo, revision)


def spec_from_hub(model: HubModel) -> ModelSpec:
    """The memory model's view of a Hub read: config.json facts and the headers' total size."""
    spec = spec_from_config(model.config, name=model.repo, where=f"{model.repo}@{model.commit}")
    size = model.checkpoint_bytes
    return replace(
        spec,
        weights_gb=size / GB if size else None,
        weights_source=(
            "safetensors headers on the Hub" if size else "estimated from parameter count"
        ),
        origin=model.origin,
        commit=model.commit,
        sources=(f"{model.repo}@{model.commit} config.json and safetensors headers",),
    )


def base_name(repo: str) -> str:
    """The model's name without a quantization suffix: Qwen3-30B-A3B-FP8 -> Qwen3-30B-A3B."""
    return _QUANT_SUFFIX.sub("", repo.split("/")[-1])


def four_bit_builds(repo: str, *, limit: int = 2) -> list[str]:
    """Repositories on the Hub named like 4-bit builds of repo, most downloaded first.

    The answer is cached beside the model's figures, so a second preflight asks nothing. Only a
    suggestion depends on it: a slow or failing search gives no candidates rather than an
    error, and never waits longer than ARCHON_HUB_TIMEOUT.
    """
    stored = _repo_dir(repo) / "archon" / "four-bit-builds.json"
    try:
        names = json.loads(stored.read_text(encoding="utf-8"))["builds"]
        return [str(n) for n in names][:limit]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if offline():
        return []
    base = base_name(repo)
    found: list[str] = []
    done = threading.Event()

    def search() -> None:
        from huggingface_hub import HfApi

        try:
            api = HfApi(endpoint=_endpoint(), token=_token())
            found.extend(m.id for m in api.list_models(search=base, sort="downloads", limit=50))
            done.set()
        except Exception:  # any failure of a search only costs the suggestion
            return

    worker = threading.Thread(target=search, daemon=True)
    worker.start()
    worker.join(timeout_s())
    names = []
    for name in list(found):
        tail = name.split("/")[-1]
        if name == repo or not tail.lower().startswith(base.lower()):
            continue
        if _FOUR_BIT.search(tail[len(base) :]):
            names.append(name)
    if done.is_set():
        try:
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_text(json.dumps({"builds": names}), encoding="utf-8")
        except OSError:
            pass  # the next preflight searches again
    return names[:limit]
