"""A simulation of the Qdrant server's REST API on 127.0.0.1, for the council memory's pod backend.

No Qdrant server binary is published on a package registry (the server is the `qdrant/qdrant`
image), so the tests of the REST backend run against this: stdlib http.server, storage by
qdrant-client's local mode, and every request body parsed by qdrant-client's own models of the
OpenAPI document (`qdrant_client.http.models`) so a body the real server would refuse is refused
here too. It serves the paths the memory uses (qdrant/qdrant docs/redoc/master/openapi.json):

    GET  /collections/{name}/exists          PUT  /collections/{name}
    PUT  /collections/{name}/index           PUT  /collections/{name}/points
    POST /collections/{name}/points/query    POST /collections/{name}/points/count
    GET  /  (version)

Answers use Qdrant's envelope `{"result": ..., "status": "ok", "time": s}`; errors its
`{"status": {"error": "..."}, "time": s}` (400 for a body that does not parse, 422 for a value
out of range, 404 for a missing collection, 409 for one that exists). With an api key set,
requests without the `api-key` header (or `Authorization: Bearer`) get 401 in plain text, as
Qdrant's auth middleware answers.
"""

from __future__ import annotations

import hmac
import importlib.metadata
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from archon.errors import EXIT_UNUSABLE, ArchonError
from archon.simulation.loopback import LOOPBACK, LoopbackServer

MAX_BODY_BYTES = 32 << 20  # Qdrant's default service.max_request_size_mb
SIMULATION_HEADER = "x-archon-simulation"


class QdrantSimulationUnavailable(ArchonError):
    exit_code = EXIT_UNUSABLE


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class QdrantSimulationConfig:
    path: Path
    api_key: str = ""


def _qdrant() -> tuple[Any, Any, Any]:
    try:
        from pydantic import TypeAdapter, ValidationError
        from qdrant_client import QdrantClient
        from qdrant_client.http import models
    except ImportError as exc:
        raise QdrantSimulationUnavailable(
            "the Qdrant simulation needs qdrant-client, which is not installed",
            fix="pip install 'archon-vllm[council]'",
        ) from exc
    return QdrantClient, models, (TypeAdapter, ValidationError)


class _Store:
    """qdrant-client local mode behind a lock: the HTTP server answers on many threads, local
    mode's SQLite and arrays are not thread-safe."""

    def __init__(self, path: Path) -> None:
        client_class, self.models, (self.adapter, self.invalid) = _qdrant()
        path.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        try:
            with _quiet():
                self.client = client_class(path=str(path), force_disable_check_same_thread=True)
        except RuntimeError as exc:  # local mode's file lock: one simulation per folder
            raise QdrantSimulationUnavailable(
                f"the Qdrant simulation's folder {path} is in use by another process",
                fix="stop the other simulation or give this one another folder",
            ) from exc
        self._operation = 0

    def parse(self, model: Any, body: Any) -> Any:
        try:
            return self.adapter(model).validate_python(body)
        except self.invalid as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise _Refused(
                HTTPStatus.BAD_REQUEST,
                f"Format error in JSON body: {where}: {first.get('msg', 'invalid')}",
            ) from exc

    def update_result(self) -> dict[str, Any]:
        self._operation += 1
        return {"operation_id": self._operation, "status": "completed"}

    def vector_size(self, name: str) -> int:
        if not self.client.collection_exists(name):
            raise _Refused(HTTPStatus.NOT_FOUND, f"Not found: Collection `{name}` doesn't exist!")
        vectors = self.client.get_collection(name).config.params.vectors
        return int(getattr(vectors, "size", 0))

    def close(self) -> None:
        with self.lock:
            self.client.close()


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Local mode is not recommended")
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        yield


# -- the routes ----------------------------------------------------------------------------------
def _exists(store: _Store, name: str, body: Any, query: dict[str, list[str]]) -> Any:
    return {"exists": bool(store.client.collection_exists(name))}


def _create_collection(store: _Store, name: str, body: Any, query: dict[str, list[str]]) -> Any:
    request = store.parse(store.models.CreateCollection, body)
    vectors = request.vectors
    if vectors is None or getattr(vectors, "size", None) is None:
        raise _Refused(
            HTTPStatus.BAD_REQUEST,
            "Bad request: the simulation serves collections of one unnamed vector only",
        )
    if vectors.size < 1:
        raise _Refused(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "Validation error in JSON body: [vectors.size: value 0 invalid, must be 1 or larger]",
        )
    if store.client.collection_exists(name):
        raise _Refused(HTTPStatus.CONFLICT, f"Wrong input: Collection `{name}` already exists!")
    store.client.create_collection(name, vectors_config=vectors)
    return True


def _create_index(store: _Store, name: str, body: Any, query: dict[str, list[str]]) -> Any:
    request = store.parse(store.models.CreateFieldIndex, body)
    store.vector_size(name)  # 404 for a missing collection
    if request.field_schema is not None:
        store.client.create_payload_index(name, request.field_name, request.field_schema)
    return store.update_result()


def _point_ids_valid(points: list[Any]) -> None:
    for point in points:
        if isinstance(point.id, str):
            try:
                uuid.UUID(point.id)
            except ValueError:
                raise _Refused(
                    HTTPStatus.BAD_REQUEST,
                    f"Format error in JSON body: value {point.id} is not a valid point ID, valid "
                    "values are either an unsigned integer or a UUID",
                ) from None
        elif isinstance(point.id, int) and point.id < 0:
            raise _Refused(
                HTTPStatus.BAD_REQUEST,
                f"Format error in JSON body: value {point.id} is not a valid point ID",
            )


def _upsert(store: _Store, name: str, body: Any, query: dict[str, list[str]]) -> Any:
    models = store.models
    request = store.parse(models.PointInsertOperations, body)
    size = store.vector_size(name)
    if isinstance(request, models.PointsBatch):
        points: Any = request.batch
        vectors = request.batch.vectors
    else:
        _point_ids_valid(request.points)
        points = request.points
        vectors = [p.vector for p in request.points]
    for vector in vectors if isinstance(vectors, list) else []:
        if isinstance(vector, list) and len(vector) != size:
            raise _Refused(
                HTTPStatus.BAD_REQUEST,
                f"Wrong input: Vector dimension error: expected dim: {size}, got {len(vector)}",
            )
    store.client.upsert(name, points=points, wait=True)
    return store.update_result()


_QUERY_FIELDS = {
    "query",
    "filter",
    "limit",
    "offset",
    "with_payload",
    "with_vector",
    "score_threshold",
    "using",
    "params",
}


def _query(store: _Store, name: str, body: Any, query: dict[str, list[str]]) -> Any:
    request = store.parse(store.models.QueryRequest, body)
    unserved = sorted(request.model_fields_set - _QUERY_FIELDS)
    if unserved:
        raise _Refused(
            HTTPStatus.BAD_REQUEST, f"Bad request: the simulation does not serve {unserved}"
        )
    limit = 10 if request.limit is None else request.limit
    if limit < 1:
        raise _Refused(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            f"Validation error in JSON body: [limit: value {limit} invalid, must be 1 or larger]",
        )
    size = store.vector_size(name)
    # A bare vector, or {"nearest": vector} as qdrant-client sends it.
    vector = getattr(request.query, "nearest", request.query)
    if isinstance(vector, list) and len(vector) != size:
        raise _Refused(
            HTTPStatus.BAD_REQUEST,
            f"Wrong input: Vector dimension error: expected dim: {size}, got {len(vector)}",
        )
    response = store.client.query_points(
        name,
        query=request.query,
        query_filter=request.filter,
        limit=limit,
        offset=request.offset,
        with_payload=False if request.with_payload is None else request.with_payload,
        with_vectors=False if request.with_vector is None else request.with_vector,
        score_threshold=request.score_threshold,
        using=request.using,
        search_params=request.params,
    )
    return response.model_dump(mode="json", exclude_none=True)


def _count(store: _Store, name: str, body: Any, query: dict[str, list[str]]) -> Any:
    request = store.parse(store.models.CountRequest, body or {})
    store.vector_size(name)
    return store.client.count(name, count_filter=request.filter, exact=True).model_dump()


Route = Callable[[_Store, str, Any, dict[str, list[str]]], Any]
# (method, path below /collections/{name}) -> (route, writes)
_ROUTES: dict[tuple[str, str], tuple[Route, bool]] = {
    ("GET", "/exists"): (_exists, False),
    ("PUT", ""): (_create_collection, True),
    ("PUT", "/index"): (_create_index, True),
    ("PUT", "/points"): (_upsert, True),
    ("POST", "/points/query"): (_query, False),
    ("POST", "/points/count"): (_count, False),
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header(SIMULATION_HEADER, "true")
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str, started: float) -> None:
        self._json(status, {"status": {"error": message}, "time": time.perf_counter() - started})

    def _authorized(self) -> bool:
        key = self.server.config.api_key
        if not key:
            return True
        given = self.headers.get("api-key")
        if given is None:
            bearer = self.headers.get("authorization", "")
            given = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None
        if given is None:
            message = "Must provide an API key or an Authorization bearer token"
        elif hmac.compare_digest(given.encode(), key.encode()):
            return True
        else:
            message = "Invalid API key or JWT"
        self._send(HTTPStatus.UNAUTHORIZED, message.encode(), "text/plain; charset=utf-8")
        return False

    def _body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Payload too large")
        if length == 0:
            return None
        try:
            return json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"Format error in JSON body: {exc}") from exc

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        if not self._authorized():
            return
        url = urlsplit(self.path)
        if method == "GET" and url.path == "/":
            self._json(
                HTTPStatus.OK, {"title": "qdrant - vector search engine", "version": _version()}
            )
            return
        parts = url.path.split("/")
        if len(parts) < 3 or parts[0] != "" or parts[1] != "collections" or not parts[2]:
            self._error(HTTPStatus.NOT_FOUND, f"no route {method} {url.path}", started)
            return
        name = unquote(parts[2])
        rest = "/" + "/".join(parts[3:]) if len(parts) > 3 else ""
        route = _ROUTES.get((method, rest))
        if route is None:
            self._error(HTTPStatus.NOT_FOUND, f"no route {method} {url.path}", started)
            return
        handler, writes = route
        try:
            body = self._body()
            if writes and body is None:
                raise _Refused(HTTPStatus.BAD_REQUEST, "Format error in JSON body: empty body")
            store = self.server.store
            with store.lock, _quiet():
                result = handler(store, name, body, parse_qs(url.query))
        except _Refused as refused:
            self._error(refused.status, refused.message, started)
            return
        except ValueError as exc:
            # Local mode refuses input the checks above let through; Qdrant says "Wrong input".
            self._error(HTTPStatus.BAD_REQUEST, f"Wrong input: {exc}", started)
            return
        self._json(
            HTTPStatus.OK,
            {"result": result, "status": "ok", "time": time.perf_counter() - started},
        )

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")


def _version() -> str:
    # The client's own release: the simulation answers what that client expects of a server.
    return importlib.metadata.version("qdrant-client")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: QdrantSimulationConfig, port: int) -> None:
        self.store = _Store(config.path)
        try:
            super().__init__((LOOPBACK, port), _Handler)
        except OSError:
            self.store.close()
            raise
        self.config = config


class QdrantSimulation(LoopbackServer):
    """A running Qdrant simulation on loopback; `url` is its base URL. Data lives under `path`
    and survives a close and a new simulation on the same path (one at a time: local mode's
    file lock)."""

    def __init__(self, path: Path | str, *, api_key: str = "", port: int = 0) -> None:
        self.config = QdrantSimulationConfig(Path(path), api_key)
        self._store_server = _Server(self.config, port)
        super().__init__(self._store_server, "archon-qdrant-simulation")

    def close(self) -> None:
        super().close()
        self._store_server.store.close()


@contextmanager
def serve_qdrant(
    path: Path | str, *, api_key: str = "", port: int = 0
) -> Iterator[QdrantSimulation]:
    """Run the Qdrant simulation for the duration of a `with` block."""
    simulation = QdrantSimulation(path, api_key=api_key, port=port).start()
    try:
        yield simulation
    finally:
        simulation.close()
