"""The council's resonance memory: answers and streamed thoughts embedded into Qdrant, recalled
by similarity in later rounds of the same session. A session is a label the client sends with its
request (its metadata), not an identity the gateway checks: it keeps conversations apart, but any
holder of a gateway key can name any session and recall what was stored under it.

This file runs inside the LiteLLM container, where neither the archon package nor qdrant-client
is installed: standard library and httpx only. It speaks Qdrant's REST API directly, the paths
and bodies of Qdrant's OpenAPI document (qdrant/qdrant docs/redoc/master/openapi.json), as
LiteLLM's own Qdrant semantic cache does (BerriAI/litellm
litellm/caching/qdrant_semantic_cache.py). The archon package loads this same file under the
same module name, so the protocols, the payload fields and the point ids are one definition for
the pod and for `archon council` on a laptop (which uses qdrant-client instead of REST).

Every failure here is a MemoryUnavailable with one line naming the URL and what went wrong: the
council treats memory as optional and answers without it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

# Point ids are uuid5 names in this namespace, so a retried round overwrites its own points.
POINT_NAMESPACE = uuid.UUID("6f1c2f4e-8a0b-5d3c-9e71-2b4a6c8d0e1f")
DEFAULT_TIMEOUT_S = 10.0
# The payload fields the recall filters on; keyword indexes make the filter cheap on the server.
INDEXED_FIELDS = ("session", "archetype")
# Query texts whose embeddings a memory keeps: a council round recalls one question per voice.
RECENT_QUERIES = 32


class MemoryUnavailable(Exception):
    """The memory could not be used; the message is one line naming the URL and the cause."""


@dataclass(frozen=True)
class MemoryRecord:
    text: str
    archetype: str
    round: int
    session: str
    kind: str = "answer"  # "answer" | "thought" (a chunk of streamed intermediate text)
    time: float = 0.0  # epoch seconds; 0 -> now at store time


@dataclass(frozen=True)
class Recollection:
    text: str
    archetype: str
    round: int
    session: str
    kind: str
    score: float


class Embedder(Protocol):
    dimension: int | None  # None until known (first call)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Memory(Protocol):
    async def remember(self, records: Sequence[MemoryRecord]) -> None: ...

    async def recall(
        self,
        text: str,
        *,
        session: str,
        archetype: str | None = None,
        k: int = 3,
        min_score: float = 0.0,
    ) -> list[Recollection]: ...

    async def close(self) -> None: ...


# -- helpers shared with the qdrant-client backend ---------------------------------------------
def chunk_text(text: str, size: int = 400) -> list[str]:
    """Streamed text in chunks of at most `size` characters, cut between words.

    A word longer than `size` (a URL, a base64 blob) is cut inside itself, so no chunk is ever
    larger than `size` whatever the text."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    chunks: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > size:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(word[:size])
            word = word[size:]
        if not word:
            continue
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= size:
            current = f"{current} {word}"
        else:
            chunks.append(current)
            current = word
    if current:
        chunks.append(current)
    return chunks


def point_id(record: MemoryRecord, index: int = 0) -> str:
    """uuid5 of (session, archetype, round, kind, index, text); index tells repeats apart."""
    name = json.dumps(
        [record.session, record.archetype, record.round, record.kind, index, record.text],
        ensure_ascii=False,
    )
    return str(uuid.uuid5(POINT_NAMESPACE, name))


def storable(records: Sequence[MemoryRecord]) -> list[tuple[str, MemoryRecord]]:
    """The records worth storing with their point ids: blank texts dropped (they embed to a zero
    vector, which has no cosine), identical records numbered so both are kept but a retry of the
    same batch lands on the same ids."""
    seen: dict[str, int] = {}
    out: list[tuple[str, MemoryRecord]] = []
    for record in records:
        if not record.text.strip():
            continue
        first = point_id(record, 0)
        index = seen.get(first, 0)
        seen[first] = index + 1
        out.append((first if index == 0 else point_id(record, index), record))
    return out


def payload(record: MemoryRecord, now: float | None = None) -> dict[str, Any]:
    stamp = record.time or (time.time() if now is None else now)
    return {
        "text": record.text,
        "archetype": record.archetype,
        "round": record.round,
        "session": record.session,
        "kind": record.kind,
        "time": stamp,
    }


def recollection(data: Any, score: float) -> Recollection | None:
    """A stored payload back as a Recollection; None for a point some other writer stored."""
    if not isinstance(data, dict):
        return None
    text, archetype, round_, session = (
        data.get("text"),
        data.get("archetype"),
        data.get("round"),
        data.get("session"),
    )
    if not (isinstance(text, str) and isinstance(archetype, str) and isinstance(session, str)):
        return None
    if not isinstance(round_, int) or isinstance(round_, bool):
        return None
    kind = data.get("kind")
    return Recollection(
        text=text,
        archetype=archetype,
        round=round_,
        session=session,
        kind=kind if isinstance(kind, str) else "answer",
        score=float(score),
    )


def match_conditions(session: str, archetype: str | None) -> list[tuple[str, str]]:
    """The (field, value) pairs every recalled point must match."""
    conditions = [("session", session)]
    if archetype is not None:
        conditions.append(("archetype", archetype))
    return conditions


def with_hint(error: str) -> str:
    """Qdrant's message, with what to do when the cause is not obvious from it."""
    if "Vector dimension error" in error:
        return (
            f"{error} (the collection holds vectors of another embedding model: use that model, "
            "or another collection)"
        )
    return error


def one_line(text: str, limit: int = 200) -> str:
    """`text` on one line of at most `limit` characters, for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class QueryVectors:
    """The embeddings of the last `size` texts a memory was asked to recall.

    The council recalls one question for every candidate archetype at once: those recalls share
    a single embedding call, because the call in flight is kept, not only its result. A waiter
    that gives up (its own timeout) leaves the call running for the others. A failed call is
    forgotten, so the next recall tries again; a new embedder (another model) starts afresh."""

    def __init__(self, size: int = RECENT_QUERIES) -> None:
        if size < 1:
            raise ValueError(f"the query cache must hold at least 1 text, got {size}")
        self.size = size
        self._embedder: Embedder | None = None
        self._entries: OrderedDict[str, list[float] | asyncio.Task[list[float]]] = OrderedDict()

    async def vector(self, embedder: Embedder, text: str) -> list[float]:
        if embedder is not self._embedder:
            self._entries.clear()
            self._embedder = embedder
        loop = asyncio.get_running_loop()
        entry = self._entries.get(text)
        if entry is not None:
            self._entries.move_to_end(text)
        if isinstance(entry, list):
            return list(entry)
        if entry is None or entry.get_loop() is not loop:
            # A call still pending on another event loop (a finished asyncio.run) never ends here.
            entry = loop.create_task(_embed_one(embedder, text))
            entry.add_done_callback(functools.partial(self._settle, text))
            self._entries[text] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return list(await asyncio.shield(entry))

    def _settle(self, text: str, task: asyncio.Task[list[float]]) -> None:
        # Read even when nobody waits any more, so asyncio does not log it as never retrieved.
        failed = task.cancelled() or task.exception() is not None
        if self._entries.get(text) is not task:
            return  # pushed out meanwhile, or the embedder changed
        if failed:
            del self._entries[text]
        else:
            self._entries[text] = task.result()


async def _embed_one(embedder: Embedder, text: str) -> list[float]:
    [vector] = await embedder.embed([text])
    return vector


# -- embeddings through the gateway ------------------------------------------------------------
class GatewayEmbedder:
    """Embeddings from an OpenAI-compatible `/v1/embeddings` (the gateway, or vLLM directly)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/v1/embeddings"
        self.model = model
        self.dimension: int | None = None
        self._timeout = timeout
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        body = {"model": self.model, "input": list(texts), "encoding_format": "float"}
        where = f"embeddings at {self.url} (model {self.model!r})"
        try:
            response = await self._client.post(
                self.url, json=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise MemoryUnavailable(f"{where}: no answer within {self._timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise MemoryUnavailable(f"{where}: unreachable ({one_line(str(exc))})") from exc
        if response.status_code >= 400:
            raise MemoryUnavailable(
                f"{where}: HTTP {response.status_code}: {one_line(response.text)}"
            )
        vectors = _embedding_vectors(response, len(texts))
        if vectors is None:
            raise MemoryUnavailable(f"{where}: the answer is not an OpenAI embeddings list")
        size = len(vectors[0])
        if any(len(v) != size for v in vectors) or (self.dimension not in (None, size)):
            raise MemoryUnavailable(
                f"{where}: vectors of {size} dimensions where {self.dimension} were expected"
            )
        self.dimension = size
        return vectors

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _embedding_vectors(response: httpx.Response, count: int) -> list[list[float]] | None:
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        return None
    if not isinstance(data, list) or len(data) != count:
        return None
    ordered: list[list[float] | None] = [None] * count
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            return None
        index = item.get("index", position)
        vector = item.get("embedding")
        if not (isinstance(index, int) and 0 <= index < count and isinstance(vector, list)):
            return None
        if not vector or not all(isinstance(x, (int, float)) for x in vector):
            return None
        ordered[index] = [float(x) for x in vector]
    if any(v is None for v in ordered):
        return None
    return [v for v in ordered if v is not None]


# -- Qdrant over REST --------------------------------------------------------------------------
class QdrantRestMemory:
    """The memory in a Qdrant server, over its REST API with httpx.

    The collection is created on the first write, sized from the first embedding (cosine
    distance), with keyword indexes on the fields recall filters by. A recall before any write
    finds nothing rather than failing."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        collection: str,
        embedder: Embedder,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.collection = collection
        self.embedder = embedder
        self._timeout = timeout
        self._headers = {"api-key": api_key} if api_key else {}
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self._ready = False  # the collection and its indexes are known to exist
        self._found = False  # the collection is known to exist
        self._lock = asyncio.Lock()
        self._queries = QueryVectors()

    @property
    def _base(self) -> str:
        return f"/collections/{self.collection}"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        where = f"Qdrant at {self.url}"
        try:
            response = await self._client.request(
                method, self.url + path, json=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise MemoryUnavailable(
                f"{where}: no answer to {method} {path} within {self._timeout:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise MemoryUnavailable(f"{where}: unreachable ({one_line(str(exc))})") from exc
        if response.status_code in (401, 403):
            raise MemoryUnavailable(
                f"{where} refused the api key (HTTP {response.status_code} to {method} {path}: "
                f"{_qdrant_error(response)}); give the key the server was started with"
            )
        if response.status_code >= 400:
            raise MemoryUnavailable(
                f"{where}: HTTP {response.status_code} to {method} {path}: "
                f"{with_hint(_qdrant_error(response))}"
            )
        try:
            return response.json()["result"]
        except (ValueError, KeyError, TypeError) as exc:
            raise MemoryUnavailable(
                f"{where}: {method} {path} answered without Qdrant's result envelope"
            ) from exc

    async def _exists(self) -> bool:
        result = await self._call("GET", f"{self._base}/exists")
        return bool(isinstance(result, dict) and result.get("exists"))

    async def _ensure(self, size: int) -> None:
        async with self._lock:
            if self._ready:
                return
            if not await self._exists():
                body = {"vectors": {"size": size, "distance": "Cosine"}}
                try:
                    await self._call("PUT", self._base, body)
                except MemoryUnavailable:
                    # Another pod or round may have created it in between: that one stands.
                    if not await self._exists():
                        raise
                for name in INDEXED_FIELDS:
                    await self._call(
                        "PUT",
                        f"{self._base}/index?wait=true",
                        {"field_name": name, "field_schema": "keyword"},
                    )
            self._ready = True

    async def remember(self, records: Sequence[MemoryRecord]) -> None:
        items = storable(records)
        if not items:
            return
        vectors = await self.embedder.embed([record.text for _, record in items])
        await self._ensure(len(vectors[0]))
        now = time.time()
        points = [
            {"id": pid, "vector": vector, "payload": payload(record, now)}
            for (pid, record), vector in zip(items, vectors, strict=True)
        ]
        await self._call("PUT", f"{self._base}/points?wait=true", {"points": points})

    async def recall(
        self,
        text: str,
        *,
        session: str,
        archetype: str | None = None,
        k: int = 3,
        min_score: float = 0.0,
    ) -> list[Recollection]:
        if k < 1 or not text.strip():
            return []
        if not (self._ready or self._found):
            if not await self._exists():
                return []  # nothing was ever remembered here
            self._found = True
        vector = await self._queries.vector(self.embedder, text)
        body = {
            "query": vector,
            "filter": {
                "must": [
                    {"key": key, "match": {"value": value}}
                    for key, value in match_conditions(session, archetype)
                ]
            },
            "limit": k,
            "with_payload": True,
            "score_threshold": min_score,
        }
        result = await self._call("POST", f"{self._base}/points/query", body)
        points = result.get("points") if isinstance(result, dict) else None
        if not isinstance(points, list):
            raise MemoryUnavailable(f"Qdrant at {self.url}: a query answer without points")
        found = []
        for point in points:
            if isinstance(point, dict) and isinstance(point.get("score"), (int, float)):
                memory = recollection(point.get("payload"), point["score"])
                if memory is not None:
                    found.append(memory)
        return found

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _qdrant_error(response: httpx.Response) -> str:
    """Qdrant's message: `{"status": {"error": ...}}` for API errors, plain text for auth."""
    try:
        body = response.json()
    except ValueError:
        return one_line(response.text) or response.reason_phrase
    status = body.get("status") if isinstance(body, dict) else None
    if isinstance(status, dict) and isinstance(status.get("error"), str):
        return one_line(status["error"])
    return one_line(json.dumps(body))
