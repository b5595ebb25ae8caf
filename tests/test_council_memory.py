"""The council's resonance memory, for real: qdrant-client's local mode and the REST backend the
gateway pod runs (against the Qdrant simulation), both embedding with the static model shipped in
the `tokenlearn-static-model` wheel (in-process, or through the vLLM simulation's /v1/embeddings).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archon.bench.council import measure_memory
from archon.council import memory as memory_module
from archon.council.memory import (
    CouncilExtraMissing,
    MemoryLocked,
    MemoryRecord,
    MemoryUnavailable,
    QdrantClientMemory,
    StaticEmbedder,
    chunk_text,
    default_memory_path,
)
from archon.errors import ArchonError
from archon.paths import chart_dir, load_chart_module
from archon.simulation import SimulationConfig, serve
from archon.simulation.qdrant import (
    QdrantSimulation,
    QdrantSimulationUnavailable,
    serve_qdrant,
)

KEY = "test-qdrant-key"
EMBED_MODEL = "embed-static"
COLLECTION = "archon-council"

MEMORY = (
    "The KV cache of the 14B model did not fit in 16 GiB of GPU memory, "
    "so we lowered max_model_len to 8192."
)
RELATED = "How much GPU memory does the KV cache need for the 14B model?"
UNRELATED = "What is a good recipe for banana bread?"
# The static model puts RELATED at about 0.65 and UNRELATED at about 0.39 from MEMORY.
MIN_SCORE = 0.55

archon_memory = load_chart_module("archon_memory")


def record(text: str = MEMORY, **fields: Any) -> MemoryRecord:
    values: dict[str, Any] = {"archetype": "maat", "round": 1, "session": "alice"} | fields
    return MemoryRecord(text=text, **values)


# -- the two backends ---------------------------------------------------------------------------
class Backend:
    """Opens a memory on storage that outlives it, so a test can close and reopen it."""

    name = ""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def open(self) -> Any:
        raise NotImplementedError

    async def restart(self) -> None:
        """Stop whatever serves the storage and start it again on the same files."""

    def stop(self) -> None:
        return None

    async def count(self) -> int:
        raise NotImplementedError


class LocalBackend(Backend):
    name = "local"

    async def open(self) -> Any:
        self.memory = QdrantClientMemory(StaticEmbedder(), path=self.root / "memory")
        return self.memory

    async def count(self) -> int:
        return await self.memory.count()


class RestBackend(Backend):
    name = "rest"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.vllm = serve(SimulationConfig(model=EMBED_MODEL))
        self.embeddings = self.vllm.__enter__()
        self.qdrant = QdrantSimulation(root / "qdrant", api_key=KEY).start()

    async def open(self) -> Any:
        embedder = archon_memory.GatewayEmbedder(self.embeddings.url, None, EMBED_MODEL)
        self.memory = archon_memory.QdrantRestMemory(self.qdrant.url, KEY, COLLECTION, embedder)
        return self.memory

    async def restart(self) -> None:
        self.qdrant.close()
        self.qdrant = QdrantSimulation(self.root / "qdrant", api_key=KEY).start()

    def stop(self) -> None:
        self.qdrant.close()
        self.vllm.__exit__(None, None, None)

    async def count(self) -> int:
        # Through qdrant-client against the same server: the REST backend's points are read
        # by the other backend's client, which parses them with its own models.
        reader = QdrantClientMemory(StaticEmbedder(), url=self.qdrant.url, api_key=KEY)
        try:
            return await reader.count()
        finally:
            await reader.close()


class ClientServerBackend(RestBackend):
    """qdrant-client against a server (the simulation), as `archon council --qdrant-url` runs."""

    name = "client-server"

    async def open(self) -> Any:
        self.memory = QdrantClientMemory(StaticEmbedder(), url=self.qdrant.url, api_key=KEY)
        return self.memory


@pytest.fixture(
    params=[LocalBackend, RestBackend, ClientServerBackend], ids=["local", "rest", "client-server"]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made: Backend = request.param(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def run(backend: Backend, body: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        memory = await backend.open()
        try:
            await asyncio.wait_for(body(memory), timeout=60)
        finally:
            await memory.close()
            await memory.embedder.close()

    asyncio.run(main())


# -- behaviour shared by both backends ----------------------------------------------------------
def test_a_memory_resonates_with_a_related_question_not_an_unrelated_one(backend: Backend) -> None:
    async def body(memory: Any) -> None:
        await memory.remember([record()])
        related = await memory.recall(RELATED, session="alice", min_score=MIN_SCORE)
        unrelated = await memory.recall(UNRELATED, session="alice", min_score=MIN_SCORE)
        assert [r.text for r in related] == [MEMORY]
        assert related[0].score >= MIN_SCORE
        assert (related[0].archetype, related[0].round, related[0].kind) == ("maat", 1, "answer")
        assert unrelated == []
        # Without a threshold the unrelated question still finds it, far lower.
        [weak] = await memory.recall(UNRELATED, session="alice", min_score=-1.0)
        assert weak.score < MIN_SCORE <= related[0].score
        assert related[0].score - weak.score > 0.15

    run(backend, body)


def test_sessions_do_not_see_each_others_memories(backend: Backend) -> None:
    async def body(memory: Any) -> None:
        await memory.remember([record(session="alice")])
        await memory.remember([record("Bob prefers answers in French.", session="bob")])
        assert await memory.recall(RELATED, session="bob", min_score=MIN_SCORE) == []
        for_bob = await memory.recall(RELATED, session="bob", min_score=-1.0)
        assert [r.session for r in for_bob] == ["bob"]
        for_alice = await memory.recall(RELATED, session="alice", k=5, min_score=-1.0)
        assert [r.text for r in for_alice] == [MEMORY]
        assert await memory.recall(RELATED, session="carol", min_score=-1.0) == []

    run(backend, body)


def test_the_archetype_filter_keeps_one_voice(backend: Backend) -> None:
    async def body(memory: Any) -> None:
        critique = "The KV cache estimate ignores the CUDA graphs; the 14B model needs more."
        await memory.remember([record(), record(critique, archetype="lilith", kind="thought")])
        both = await memory.recall(RELATED, session="alice", k=5, min_score=-1.0)
        assert sorted(r.archetype for r in both) == ["lilith", "maat"]
        [only] = await memory.recall(RELATED, session="alice", archetype="lilith", min_score=-1.0)
        assert (only.archetype, only.kind, only.text) == ("lilith", "thought", critique)
        assert await memory.recall(RELATED, session="alice", archetype="roc") == []

    run(backend, body)


def test_memory_survives_a_restart(backend: Backend) -> None:
    run(backend, lambda memory: memory.remember([record()]))
    asyncio.run(backend.restart())

    async def body(memory: Any) -> None:
        [found] = await memory.recall(RELATED, session="alice", min_score=MIN_SCORE)
        assert found.text == MEMORY

    run(backend, body)


def test_storing_the_same_record_twice_keeps_one_point(backend: Backend) -> None:
    async def body(memory: Any) -> None:
        await memory.remember([record()])
        await memory.remember([record()])  # a retried round
        assert await backend.count() == 1
        found = await memory.recall(RELATED, session="alice", k=5, min_score=-1.0)
        assert [r.text for r in found] == [MEMORY]
        # A different round of the same text is a different memory; the id does not depend on
        # where a record sits in its batch.
        await memory.remember([record(round=2), record()])
        assert await backend.count() == 2

    run(backend, body)


class _WideEmbedder:
    """Another embedding model: same texts, twice the dimensions."""

    dimension: int | None = None

    async def embed(self, texts: Any) -> list[list[float]]:
        vectors = await StaticEmbedder().embed(texts)
        return [v + v for v in vectors]

    async def close(self) -> None:
        return None


def test_a_collection_of_another_embedding_model_is_one_line(backend: Backend) -> None:
    async def body(memory: Any) -> None:
        await memory.remember([record()])
        memory.embedder = _WideEmbedder()
        with pytest.raises(MemoryUnavailable) as wrong:
            await memory.remember([record("a memory embedded by another model")])
        assert "expected dim: 64, got 128" in str(wrong.value)
        assert "another embedding model" in str(wrong.value)
        with pytest.raises(MemoryUnavailable) as wrong_query:
            await memory.recall(RELATED, session="alice")
        assert "64" in str(wrong_query.value) and "128" in str(wrong_query.value)

    run(backend, body)


def test_recall_before_any_memory_finds_nothing(backend: Backend) -> None:
    async def body(memory: Any) -> None:
        assert await memory.recall(RELATED, session="alice", min_score=-1.0) == []
        assert await memory.recall("   ", session="alice") == []
        await memory.remember([record("   ")])  # blank text is not stored
        assert await memory.recall(RELATED, session="alice", min_score=-1.0) == []

    run(backend, body)


# -- one embedding per question -----------------------------------------------------------------
class _CountingEmbedder:
    """The real embedder, recording each call; a call lasts at least `delay_s`, so recalls started
    together are still waiting on it when the next one asks. Call number `fail_call` fails as an
    unreachable embeddings endpoint does."""

    def __init__(self, inner: Any, delay_s: float = 0.05, fail_call: int = 0) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.fail_call = fail_call
        self.calls: list[list[str]] = []
        self.dimension: int | None = inner.dimension

    async def embed(self, texts: Any) -> list[list[float]]:
        self.calls.append(list(texts))
        await asyncio.sleep(self.delay_s)
        if len(self.calls) == self.fail_call:
            raise MemoryUnavailable("embeddings at http://127.0.0.1:9/v1/embeddings: unreachable")
        return await self.inner.embed(texts)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.inner.close()


VOICES = ("maat", "lilith", "phoenix", "roc", "sphinx", "anubis")


def test_a_question_recalled_for_every_voice_is_embedded_once(backend: Backend) -> None:
    async def body(memory: Any) -> None:
        await memory.remember([record(archetype=name) for name in VOICES])
        counting = _CountingEmbedder(memory.embedder)
        memory.embedder = counting
        found = await asyncio.gather(
            *(
                memory.recall(RELATED, session="alice", archetype=name, min_score=MIN_SCORE)
                for name in VOICES
            )
        )
        assert counting.calls == [[RELATED]]
        assert [[m.archetype for m in memories] for memories in found] == [[n] for n in VOICES]
        # The next round asks again: still no call; another question is one call more.
        again = await memory.recall(RELATED, session="alice", k=10, min_score=MIN_SCORE)
        assert sorted(m.archetype for m in again) == sorted(VOICES)
        assert await memory.recall(UNRELATED, session="alice", min_score=MIN_SCORE) == []
        assert counting.calls == [[RELATED], [UNRELATED]]

    run(backend, body)


def test_a_failed_embedding_fails_its_waiters_once_and_is_tried_again(tmp_path: Path) -> None:
    async def main() -> None:
        counting = _CountingEmbedder(StaticEmbedder(), fail_call=2)
        memory = QdrantClientMemory(counting, path=tmp_path)
        try:
            await memory.remember([record()])
            failed = await asyncio.gather(
                *(memory.recall(RELATED, session="alice") for _ in range(3)),
                return_exceptions=True,
            )
            assert [type(f) for f in failed] == [MemoryUnavailable] * 3
            assert len(counting.calls) == 2  # the batch stored, then one recall call
            [found] = await memory.recall(RELATED, session="alice", min_score=MIN_SCORE)
            assert found.text == MEMORY
            assert counting.calls[1:] == [[RELATED], [RELATED]]
        finally:
            await memory.close()

    asyncio.run(asyncio.wait_for(main(), timeout=60))


def test_a_recall_that_gives_up_leaves_the_embedding_to_the_others() -> None:
    async def main() -> None:
        counting = _CountingEmbedder(StaticEmbedder(), delay_s=0.2)
        queries = archon_memory.QueryVectors()
        first = asyncio.ensure_future(queries.vector(counting, RELATED))
        await asyncio.sleep(0.01)  # the first waiter has started the call
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queries.vector(counting, RELATED), timeout=0.05)
        first.cancel()  # the one that started the call gives up too
        vector = await asyncio.wait_for(queries.vector(counting, RELATED), timeout=5)
        assert counting.calls == [[RELATED]]
        [expected] = await StaticEmbedder().embed([RELATED])
        assert vector == pytest.approx(expected)

    asyncio.run(main())


def test_the_query_cache_keeps_the_latest_texts_of_one_embedder() -> None:
    async def main() -> None:
        counting = _CountingEmbedder(StaticEmbedder(), delay_s=0)
        queries = archon_memory.QueryVectors(size=2)
        for text in ("a", "b", "a", "c", "a", "b"):
            await queries.vector(counting, text)
        # "a" stays (recently used), "b" is pushed out by "c" and embedded again.
        assert counting.calls == [["a"], ["b"], ["c"], ["b"]]
        other = _CountingEmbedder(StaticEmbedder(), delay_s=0)
        await queries.vector(other, "a")  # another model: nothing of the first one applies
        assert other.calls == [["a"]]
        # A vector handed out is the caller's: changing it changes no later answer.
        mine = await queries.vector(other, "a")
        mine[0] += 1.0
        assert (await queries.vector(other, "a"))[0] == pytest.approx(mine[0] - 1.0)
        with pytest.raises(ValueError, match="at least 1"):
            archon_memory.QueryVectors(size=0)

    asyncio.run(main())


# -- the two backends share one layout ----------------------------------------------------------
def test_points_written_over_rest_are_read_by_qdrant_client(tmp_path: Path) -> None:
    async def main() -> None:
        with serve(SimulationConfig(model=EMBED_MODEL)) as vllm, serve_qdrant(tmp_path) as qdrant:
            embedder = archon_memory.GatewayEmbedder(vllm.url, None, EMBED_MODEL)
            rest = archon_memory.QdrantRestMemory(qdrant.url, None, COLLECTION, embedder)
            await rest.remember([record()])
            await rest.close()
            await embedder.close()
            client = QdrantClientMemory(StaticEmbedder(), url=qdrant.url)
            try:
                [found] = await client.recall(RELATED, session="alice", min_score=MIN_SCORE)
                assert found.text == MEMORY
                await client.remember([record()])  # the same point id: still one point
                assert await client.count() == 1
            finally:
                await client.close()

    asyncio.run(asyncio.wait_for(main(), timeout=60))


# -- failures are one line of MemoryUnavailable -------------------------------------------------
def test_a_wrong_api_key_is_memory_unavailable(tmp_path: Path) -> None:
    async def main() -> None:
        with serve_qdrant(tmp_path, api_key=KEY) as qdrant:
            rest = archon_memory.QdrantRestMemory(qdrant.url, "wrong", COLLECTION, StaticEmbedder())
            with pytest.raises(MemoryUnavailable) as refused:
                await rest.remember([record()])
            await rest.close()
            client = QdrantClientMemory(StaticEmbedder(), url=qdrant.url, api_key="wrong")
            with pytest.raises(MemoryUnavailable) as refused_too:
                await client.remember([record()])
            await client.close()
            for error in (refused.value, refused_too.value):
                assert qdrant.url in str(error)
                assert "refused the api key (HTTP 401" in str(error)
                assert "\n" not in str(error)

    asyncio.run(asyncio.wait_for(main(), timeout=60))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _silent_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_unreachable_qdrant_is_memory_unavailable_within_the_timeout(kind: str) -> None:
    async def attempt(url: str) -> list[str]:
        errors = []
        rest = archon_memory.QdrantRestMemory(url, KEY, COLLECTION, StaticEmbedder(), timeout=0.5)
        client = QdrantClientMemory(StaticEmbedder(), url=url, api_key=KEY, timeout=0.5)
        for memory in (rest, client):
            started = time.monotonic()
            with pytest.raises(MemoryUnavailable) as failed:
                await memory.recall(RELATED, session="alice")
            assert time.monotonic() - started < 3
            errors.append(str(failed.value))
            await memory.close()
        return errors

    if kind == "refused":
        url = f"http://127.0.0.1:{_closed_port()}"
        errors = asyncio.run(attempt(url))
        assert all("unreachable" in e for e in errors)
    else:
        with _silent_listener() as port:
            url = f"http://127.0.0.1:{port}"
            errors = asyncio.run(attempt(url))
        assert any("within 0.5s" in e for e in errors)
    assert all(url in e for e in errors)


def test_an_embedding_failure_is_memory_unavailable(tmp_path: Path) -> None:
    async def main() -> None:
        with serve(SimulationConfig(model=EMBED_MODEL)) as vllm, serve_qdrant(tmp_path) as qdrant:
            embedder = archon_memory.GatewayEmbedder(vllm.url, None, "no-such-model")
            rest = archon_memory.QdrantRestMemory(qdrant.url, None, COLLECTION, embedder)
            with pytest.raises(MemoryUnavailable, match=r"no-such-model.*HTTP 404"):
                await rest.remember([record()])
            await rest.close()
            await embedder.close()

    asyncio.run(asyncio.wait_for(main(), timeout=60))


# -- local mode ---------------------------------------------------------------------------------
def test_local_mode_holds_its_folder_for_one_process(tmp_path: Path) -> None:
    async def main() -> None:
        first = QdrantClientMemory(StaticEmbedder(), path=tmp_path)
        try:
            with pytest.raises(MemoryLocked) as locked:
                QdrantClientMemory(StaticEmbedder(), path=tmp_path)
            line = locked.value.line()
            assert str(tmp_path) in line
            assert "--qdrant-url" in line and "--memory-path" in line
        finally:
            await first.close()
        again = QdrantClientMemory(StaticEmbedder(), path=tmp_path)  # the lock was released
        await again.close()

    asyncio.run(main())


def test_a_memory_path_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ArchonError) as refused:
        QdrantClientMemory(StaticEmbedder(), path=tmp_path / "file")
    assert refused.value.exit_code == 2
    assert refused.value.line().startswith("--memory-path: council memory at ")


def test_local_mode_warns_once_past_the_point_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(memory_module, "LOCAL_POINTS_LIMIT", 2)
    monkeypatch.setattr(memory_module, "_warned_paths", set())

    async def main() -> None:
        memory = QdrantClientMemory(StaticEmbedder(), path=tmp_path)
        try:
            for i in range(5):
                await memory.remember([record(f"memory number {i}", round=i)])
        finally:
            await memory.close()

    with caplog.at_level(logging.WARNING, logger="archon.council.memory"):
        asyncio.run(main())
    warnings = [r.getMessage() for r in caplog.records if "Qdrant server" in r.getMessage()]
    assert len(warnings) == 1
    assert "holds 3 points" in warnings[0]
    assert str(tmp_path) in warnings[0]


def test_without_the_council_extra_one_line_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "qdrant_client", None)
    with pytest.raises(CouncilExtraMissing) as missing:
        QdrantClientMemory(StaticEmbedder(), path=tmp_path)
    assert "archon-vllm[council]" in missing.value.line()
    monkeypatch.setitem(sys.modules, "static_model", None)
    with pytest.raises(CouncilExtraMissing):
        StaticEmbedder()


def test_the_default_path_is_under_the_archon_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHON_DATA_DIR", str(tmp_path / "data"))
    assert default_memory_path() == (tmp_path / "data" / "council-memory").resolve()
    monkeypatch.delenv("ARCHON_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_memory_path() == (tmp_path / "xdg" / "archon" / "council-memory").resolve()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "share" / "archon" / "council-memory"
    assert default_memory_path() == expected.resolve()


def test_the_chart_module_is_loaded_once_under_its_own_name() -> None:
    assert sys.modules["archon_memory"] is archon_memory
    assert load_chart_module("archon_memory") is archon_memory
    assert memory_module.MemoryRecord is archon_memory.MemoryRecord
    assert archon_memory.__file__ == str(chart_dir() / "files" / "archon_memory.py")


def test_a_chart_variant_brings_its_own_module_or_leaves_the_packaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = str(chart_dir() / "files" / "archon_memory.py")
    monkeypatch.delitem(sys.modules, "archon_memory")
    monkeypatch.setenv("ARCHON_CHART_DIR", str(tmp_path))
    assert load_chart_module("archon_memory").__file__ == packaged  # no files/ in the variant
    monkeypatch.delitem(sys.modules, "archon_memory")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "archon_memory.py").write_text("VARIANT = True\n")
    assert load_chart_module("archon_memory").VARIANT is True
    monkeypatch.delitem(sys.modules, "archon_memory")
    (tmp_path / "files" / "archon_memory.py").write_text("raise RuntimeError('broken')\n")
    with pytest.raises(RuntimeError, match="broken"):
        load_chart_module("archon_memory")
    assert "archon_memory" not in sys.modules  # a failed load leaves nothing half-made


# -- chunks -------------------------------------------------------------------------------------
def test_chunk_text_cuts_between_words() -> None:
    text = "alpha beta gamma delta epsilon"
    assert chunk_text(text, size=11) == ["alpha beta", "gamma delta", "epsilon"]
    assert chunk_text("", size=10) == []
    assert chunk_text("   \n ", size=10) == []
    assert chunk_text("abcdefghij klm", size=4) == ["abcd", "efgh", "ij", "klm"]
    with pytest.raises(ValueError):
        chunk_text(text, size=0)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400), size=st.integers(min_value=1, max_value=60))
def test_chunks_are_bounded_and_lose_nothing(text: str, size: int) -> None:
    chunks = chunk_text(text, size)
    assert all(0 < len(c) <= size for c in chunks)
    assert all(c == c.strip() and c for c in chunks)
    assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())
    words = set(" ".join(chunks).split())
    assert all(w in words for w in text.split() if len(w) <= size)


def test_the_same_records_get_the_same_point_ids() -> None:
    first = archon_memory.storable([record(), record(), record(round=2)])
    again = archon_memory.storable([record(), record(), record(round=2)])
    assert [pid for pid, _ in first] == [pid for pid, _ in again]
    assert len({pid for pid, _ in first}) == 3  # a repeat in one batch is kept apart


# -- the Qdrant simulation holds to the real API ------------------------------------------------
@asynccontextmanager
async def _qdrant_http(path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    with serve_qdrant(path, api_key=KEY) as qdrant:
        async with httpx.AsyncClient(
            base_url=qdrant.url, headers={"api-key": KEY}, timeout=5
        ) as http:
            yield http, qdrant.url


def test_the_qdrant_simulation_refuses_what_qdrant_refuses(tmp_path: Path) -> None:
    async def main() -> None:
        async with _qdrant_http(tmp_path) as (http, url):
            missing = await http.put("/collections/c/points", json={"points": []})
            assert missing.status_code == 404
            assert missing.json()["status"]["error"] == "Not found: Collection `c` doesn't exist!"
            created = await http.put(
                "/collections/c", json={"vectors": {"size": 3, "distance": "Cosine"}}
            )
            assert created.json() == created.json() | {"result": True, "status": "ok"}
            again = await http.put(
                "/collections/c", json={"vectors": {"size": 3, "distance": "Cosine"}}
            )
            assert again.status_code == 409
            for bad in (
                {"points": [{"id": 1}]},  # no vector
                {"points": [{"id": "not-a-uuid", "vector": [1, 0, 0]}]},
                {"points": [{"id": 1, "vector": [1, 0]}]},  # wrong size
                {"points": [{"id": 1, "vector": [1, 0, 0], "colour": "red"}]},
            ):
                refused = await http.put("/collections/c/points?wait=true", json=bad)
                assert refused.status_code == 400, bad
                assert refused.json()["status"]["error"], bad
            zero = await http.post(
                "/collections/c/points/query", json={"query": [1, 0, 0], "limit": 0}
            )
            assert zero.status_code == 422
            index = await http.put(
                "/collections/c/index", json={"field_name": "session", "field_schema": "keyword"}
            )
            assert index.json()["result"]["status"] == "completed"
            no_key = await http.get("/collections/c/exists", headers={"api-key": ""})
            assert no_key.status_code == 401
            async with httpx.AsyncClient(timeout=5) as anonymous:
                bare = await anonymous.get(f"{url}/collections/c/exists")
                bearer = await anonymous.get(
                    f"{url}/collections/c/exists", headers={"authorization": f"Bearer {KEY}"}
                )
            assert bare.status_code == 401
            assert bare.text == "Must provide an API key or an Authorization bearer token"
            assert bearer.json()["result"] == {"exists": True}

    asyncio.run(asyncio.wait_for(main(), timeout=60))


def test_one_qdrant_simulation_per_folder(tmp_path: Path) -> None:
    with serve_qdrant(tmp_path), pytest.raises(QdrantSimulationUnavailable, match="in use"):
        QdrantSimulation(tmp_path)
    with serve_qdrant(tmp_path) as again:  # the first one let go of it
        assert again.port > 0


def test_the_qdrant_simulation_answers_in_qdrants_envelope(tmp_path: Path) -> None:
    async def main() -> None:
        async with _qdrant_http(tmp_path) as (http, _):
            await http.put("/collections/c", json={"vectors": {"size": 2, "distance": "Cosine"}})
            points = [
                {"id": 1, "vector": [1, 0], "payload": {"session": "a"}},
                {"id": 2, "vector": [0, 1], "payload": {"session": "b"}},
            ]
            put = await http.put("/collections/c/points?wait=true", json={"points": points})
            assert put.json()["result"]["status"] == "completed"
            query = {
                "query": [1, 0.1],
                "filter": {"must": [{"key": "session", "match": {"value": "a"}}]},
                "limit": 5,
                "with_payload": True,
            }
            found = (await http.post("/collections/c/points/query", json=query)).json()
            assert found["status"] == "ok"
            assert isinstance(found["time"], float)
            [point] = found["result"]["points"]
            assert point["id"] == 1 and point["payload"] == {"session": "a"}
            assert 0.99 < point["score"] <= 1.0 + 1e-6
            count = await http.post("/collections/c/points/count", json={"exact": True})
            assert count.json()["result"] == {"count": 2}

    asyncio.run(asyncio.wait_for(main(), timeout=60))


# -- benchmark helper ---------------------------------------------------------------------------
def test_measure_memory_reports_latency_per_round(tmp_path: Path) -> None:
    async def main() -> dict[str, Any]:
        embedder = StaticEmbedder()
        memory = QdrantClientMemory(embedder, path=tmp_path)
        try:
            return await measure_memory(memory, embedder, rounds=3, voices=4)
        finally:
            await memory.close()

    figures = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert (figures["rounds"], figures["voices"], figures["points"]) == (3, 4, 12)
    assert figures["recalled"] > 0
    for key in ("embed_ms", "upsert_ms", "recall_ms"):
        assert 0 < figures[key]["p50"] <= figures[key]["p95"]
    json.dumps(figures)  # --output json carries it as is
