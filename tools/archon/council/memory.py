"""The council's memory off the cluster: qdrant-client (local mode under the Archon data dir, or a
Qdrant server) and the static embedding model shipped inside the `tokenlearn-static-model` wheel.

The protocols, the payload fields and the point ids are those of the chart's `archon_memory`
module, the code the gateway pod runs; only the transport differs (qdrant-client here, REST with
httpx in the pod). Both packages come with the `council` extra and are imported on first use, so
the rest of Archon runs without them.

Local mode is qdrant-client's embedded engine: exact search over every point, one process per
folder (a file lock), fine for a few thousand memories; past 20 000 points a warning says to move
to a Qdrant server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import warnings
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from archon.errors import EXIT_UNUSABLE, ArchonError, UsageError
from archon.paths import load_chart_module, user_data_dir

if TYPE_CHECKING:
    import archon_memory
else:
    archon_memory = load_chart_module("archon_memory")

MemoryRecord = archon_memory.MemoryRecord
Recollection = archon_memory.Recollection
MemoryUnavailable = archon_memory.MemoryUnavailable
chunk_text = archon_memory.chunk_text
one_line = archon_memory.one_line

LOG = logging.getLogger(__name__)
DEFAULT_COLLECTION = "archon-council"
STATIC_DIMENSION = 64
# qdrant-client's own threshold for local mode (qdrant_client/local/async_qdrant_local.py).
LOCAL_POINTS_LIMIT = 20_000
_warned_paths: set[str] = set()


class CouncilExtraMissing(ArchonError):
    """qdrant-client or the static embedding model is not installed."""

    exit_code = EXIT_UNUSABLE


class MemoryLocked(ArchonError):
    """Another process holds the local memory folder."""

    exit_code = EXIT_UNUSABLE


def default_memory_path() -> Path:
    return user_data_dir() / "council-memory"


def _need(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise CouncilExtraMissing(
            f"the council memory needs the Python package of `{module}`, which is not installed",
            fix="pip install 'archon-vllm[council]'",
        ) from exc


class StaticEmbedder:
    """64-dimension normalized embeddings from the model inside the `tokenlearn-static-model`
    wheel: no download, no GPU, a few milliseconds per batch after a first load of about 1 s."""

    def __init__(self) -> None:
        self._model = _need("static_model")
        self.dimension: int | None = STATIC_DIMENSION

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        # The model is native code that holds the CPU: off the event loop, so other voices stream.
        vectors = await asyncio.to_thread(self._model.get_embeddings, [str(t) for t in texts])
        return [list(map(float, v)) for v in vectors]

    async def close(self) -> None:
        return None


class QdrantClientMemory:
    """The memory through qdrant-client: `path=` for local mode, or `url=` (+ `api_key=`) for a
    Qdrant server. Same collection layout, payload and point ids as the pod's REST backend, so a
    server filled by the gateway can be read here and the other way round."""

    def __init__(
        self,
        embedder: archon_memory.Embedder,
        *,
        path: Path | str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        timeout: float = archon_memory.DEFAULT_TIMEOUT_S,
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path= (local mode) or url= (a Qdrant server)")
        qdrant_client = _need("qdrant_client")
        self.embedder = embedder
        self.collection = collection
        self.local = path is not None
        self.where = (
            f"council memory at {Path(path).expanduser()}"
            if path is not None
            else f"Qdrant at {url}"
        )
        self._path = str(Path(path).expanduser().resolve()) if path is not None else ""
        self._timeout = timeout
        self._ready = False
        self._found = False
        self._size_checked = False
        self._lock = asyncio.Lock()
        self._queries = archon_memory.QueryVectors()
        # One thread: local mode is not thread-safe, and it keeps the calls in order.
        self._worker: ThreadPoolExecutor | None = None
        self._closed = False
        if path is not None:
            self._client = self._open_local(qdrant_client, Path(self._path))
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="archon-council-memory")
        else:
            with warnings.catch_warnings():
                if urlsplit(url or "").hostname in ("127.0.0.1", "localhost", "::1"):
                    # A key in clear text over loopback (a port-forward) leaves the machine never.
                    warnings.filterwarnings("ignore", message="Api key is used with an insecure")
                self._client = qdrant_client.AsyncQdrantClient(
                    url=url,
                    api_key=api_key or None,
                    timeout=max(1, math.ceil(timeout)),
                    # The chart pins the server; a version probe would block start-up on a dead
                    # URL.
                    check_compatibility=False,
                )

    def _open_local(self, qdrant_client: Any, path: Path) -> Any:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with _quiet_local_mode():
                # Opened here, used on the memory's worker thread: SQLite's same-thread check
                # would refuse that; the single worker keeps the calls one at a time instead.
                return qdrant_client.AsyncQdrantClient(
                    path=str(path), force_disable_check_same_thread=True
                )
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            raise MemoryLocked(
                f"council memory at {path} is in use by another process "
                "(local mode allows one process per folder)",
                fix="wait for the other `archon council` to finish, point this one at a Qdrant "
                "server (--qdrant-url) or at another folder (--memory-path)",
            ) from exc
        except OSError as exc:
            raise UsageError(
                f"council memory at {path} cannot be opened: {exc.strerror or exc}",
                key="--memory-path",
                fix="give a writable folder",
            ) from exc

    async def _call(self, operation: str, call: Any) -> Any:
        """One qdrant-client call, bounded, with its failure as one MemoryUnavailable line."""
        exceptions = _need("qdrant_client.http.exceptions")
        try:
            if self._worker is not None:
                # Local mode computes inside its coroutines (an exact search walks every point):
                # on its own thread, so the voices streaming on this loop are not held up.
                running = asyncio.get_running_loop().run_in_executor(self._worker, _run_local, call)
                return await asyncio.wait_for(running, timeout=self._timeout)
            return await asyncio.wait_for(call, timeout=self._timeout)
        except TimeoutError as exc:
            raise MemoryUnavailable(
                f"{self.where}: no answer to {operation} within {self._timeout:g}s"
            ) from exc
        except exceptions.UnexpectedResponse as exc:
            status = exc.status_code
            text = one_line(exc.content.decode("utf-8", "replace"))
            if status in (401, 403):
                raise MemoryUnavailable(
                    f"{self.where} refused the api key (HTTP {status} to {operation}: {text}); "
                    "give the key the server was started with"
                ) from exc
            raise MemoryUnavailable(
                f"{self.where}: HTTP {status} to {operation}: {archon_memory.with_hint(text)}"
            ) from exc
        except exceptions.ResponseHandlingException as exc:
            cause = str(exc.source) or type(exc.source).__name__
            raise MemoryUnavailable(f"{self.where}: unreachable ({one_line(cause)})") from exc
        except (httpx.HTTPError, OSError, ValueError, RuntimeError) as exc:
            # Local mode reports a closed client or a wrong vector size as these.
            text = archon_memory.with_hint(one_line(str(exc)))
            raise MemoryUnavailable(f"{self.where}: {operation}: {text}") from exc

    async def _exists(self) -> bool:
        return bool(
            await self._call("collection_exists", self._client.collection_exists(self.collection))
        )

    async def _ensure(self, size: int) -> None:
        models = _need("qdrant_client.models")
        async with self._lock:
            if self._ready:
                return
            if not await self._exists():
                vectors = models.VectorParams(size=size, distance=models.Distance.COSINE)
                try:
                    await self._call(
                        "create_collection",
                        self._client.create_collection(self.collection, vectors_config=vectors),
                    )
                except MemoryUnavailable:
                    if not await self._exists():  # another writer created it in between
                        raise
                # Local mode ignores payload indexes (and warns): only a server gets them.
                for name in () if self.local else archon_memory.INDEXED_FIELDS:
                    await self._call(
                        "create_payload_index",
                        self._client.create_payload_index(
                            self.collection, name, models.PayloadSchemaType.KEYWORD, wait=True
                        ),
                    )
            self._ready = True

    async def _check_size(self) -> None:
        if not self.local or self._size_checked or self._path in _warned_paths:
            return
        result = await self._call("count", self._client.count(self.collection, exact=True))
        if result.count > LOCAL_POINTS_LIMIT:
            _warned_paths.add(self._path)
            self._size_checked = True
            LOG.warning(
                "%s holds %d points: local mode compares every question with every point and "
                "slows down past %d; move the memory to a Qdrant server (--qdrant-url, or "
                "qdrant.enabled in the chart)",
                self.where,
                result.count,
                LOCAL_POINTS_LIMIT,
            )

    async def remember(self, records: Sequence[archon_memory.MemoryRecord]) -> None:
        models = _need("qdrant_client.models")
        items = archon_memory.storable(records)
        if not items:
            return
        vectors = await self.embedder.embed([record.text for _, record in items])
        await self._ensure(len(vectors[0]))
        now = time.time()
        points = [
            models.PointStruct(id=pid, vector=vector, payload=archon_memory.payload(record, now))
            for (pid, record), vector in zip(items, vectors, strict=True)
        ]
        await self._call("upsert", self._client.upsert(self.collection, points=points, wait=True))
        await self._check_size()

    async def recall(
        self,
        text: str,
        *,
        session: str,
        archetype: str | None = None,
        k: int = 3,
        min_score: float = 0.0,
    ) -> list[archon_memory.Recollection]:
        models = _need("qdrant_client.models")
        if k < 1 or not text.strip():
            return []
        if not (self._ready or self._found):
            if not await self._exists():
                return []
            self._found = True
            await self._check_size()
        vector = await self._queries.vector(self.embedder, text)
        conditions = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in archon_memory.match_conditions(session, archetype)
        ]
        response = await self._call(
            "query_points",
            self._client.query_points(
                self.collection,
                query=vector,
                query_filter=models.Filter(must=conditions),
                limit=k,
                with_payload=True,
                score_threshold=min_score,
            ),
        )
        found = []
        for point in response.points:
            memory = archon_memory.recollection(point.payload, point.score)
            if memory is not None:
                found.append(memory)
        return found

    async def count(self) -> int:
        """Points stored in the collection (0 before the first write)."""
        if not await self._exists():
            return 0
        result = await self._call("count", self._client.count(self.collection, exact=True))
        return int(result.count)

    async def close(self) -> None:
        # Releases local mode's file lock, so the next process (or a reopen) may take the folder.
        if self._closed:
            return
        self._closed = True
        if self._worker is None:
            await self._client.close()
            return
        worker, self._worker = self._worker, None
        await asyncio.get_running_loop().run_in_executor(worker, _run_local, self._client.close())
        worker.shutdown(wait=True)


def _run_local(call: Coroutine[Any, Any, Any]) -> Any:
    """A local-mode coroutine to completion on the memory's own thread (it awaits nothing)."""
    with _quiet_local_mode():
        return asyncio.run(call)


@contextmanager
def _quiet_local_mode() -> Iterator[None]:
    """qdrant-client warns through `warnings` about local-mode limits Archon reports itself."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Local mode is not recommended")
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        yield
