"""The vLLM simulation: stdlib http.server on 127.0.0.1, with latency and failure knobs.

Response shapes follow vLLM's OpenAI-compatible server (vllm/entrypoints/openai/protocol.py:
ModelList/ModelCard, ChatCompletionResponse, ChatCompletionStreamResponse; streaming ends with
`data: [DONE]`; EmbeddingResponse, answered by the static embedding model of the
`tokenlearn-static-model` wheel when the `council` extra is installed). Only the fields clients
read are produced.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from archon.simulation.loopback import LOOPBACK, LoopbackServer
from archon.simulation.structured import structured_reply

SIMULATION_HEADER = "x-archon-simulation"
MAX_BODY_BYTES = 1 << 20  # a chat request is small; refuse anything larger than 1 MiB
EMBEDDING_DIMENSION = 64  # the static model of tokenlearn-static-model


@dataclass(frozen=True)
class SimulationConfig:
    model: str = "qwen2.5-coder-14b"
    max_model_len: int = 8192
    # Seconds before the first token and between tokens (vLLM's TTFT and inter-token latency).
    first_token_latency_s: float = 0.0
    token_latency_s: float = 0.0
    # Fraction of completion requests answered with HTTP 500, drawn from a seeded generator so a
    # test sees the same sequence every run.
    failure_rate: float = 0.0
    seed: int = 0
    # /health answers 503 while True: a server still loading its model.
    unhealthy: bool = False
    max_tokens_default: int = 32
    # Replies to structured-output requests, per JSON schema name, served in order (the last one
    # repeats): what the "model" decides. Other schemas get their smallest valid instance.
    structured_script: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Write every free-text reply to its max_tokens (a model that does not stop early), so a
    # reply's latency follows its token budget.
    fill_replies: bool = False


def reply_words(messages: list[dict[str, Any]], limit: int, *, fill: bool = False) -> list[str]:
    """A deterministic reply that names itself a simulation and echoes the last user message;
    `fill` pads it to `limit` words, as a model that writes until max_tokens."""
    last = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content", "")
            last = content if isinstance(content, str) else json.dumps(content)
            break
    words = ["[simulated", "vLLM", "reply,", "no", "GPU]", "you", "said:", *last.split()]
    if fill and len(words) < limit:
        words += ["more"] * (limit - len(words))
    return words[: max(1, limit)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests and the demo print what matters themselves

    # -- plumbing ---------------------------------------------------------------------------
    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header(SIMULATION_HEADER, "true")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str) -> None:
        # vLLM's ErrorResponse shape.
        self._send_json(
            status,
            {"object": "error", "message": message, "type": status.phrase, "code": int(status)},
        )

    def _read_json(self) -> dict[str, Any] | None:
        length = int(self.headers.get("content-length") or 0)
        if length <= 0 or length > MAX_BODY_BYTES:
            self._error(HTTPStatus.BAD_REQUEST, "request body missing or larger than 1 MiB")
            return None
        try:
            body = json.loads(self.rfile.read(length))
        except json.JSONDecodeError:
            self._error(HTTPStatus.BAD_REQUEST, "request body is not JSON")
            return None
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "request body is not a JSON object")
            return None
        return body

    def _read_request(self) -> dict[str, Any] | None:
        """The request body, once it names the served model (or none, as vLLM allows); None
        after answering the error."""
        body = self._read_json()
        if body is None:
            return None
        if body.get("model") not in (None, self.server.config.model):
            self._error(HTTPStatus.NOT_FOUND, f"The model `{body.get('model')}` does not exist.")
            return None
        return body

    # -- routes -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        config = self.server.config
        if self.path == "/health":
            status = HTTPStatus.SERVICE_UNAVAILABLE if config.unhealthy else HTTPStatus.OK
            self.send_response(status)
            self.send_header("content-length", "0")
            self.send_header(SIMULATION_HEADER, "true")
            self.end_headers()
        elif self.path == "/v1/models":
            card = {
                "id": config.model,
                "object": "model",
                "created": self.server.started,
                "owned_by": "vllm",
                "root": config.model,
                "max_model_len": config.max_model_len,
            }
            self._send_json(HTTPStatus.OK, {"object": "list", "data": [card]})
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}")

    def do_POST(self) -> None:
        if self.path == "/v1/embeddings":
            self._embeddings()
            return
        if self.path != "/v1/chat/completions":
            self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}")
            return
        body = self._read_request()
        if body is None:
            return
        config = self.server.config
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._error(HTTPStatus.BAD_REQUEST, "messages must be a non-empty list")
            return
        if self.server.draw_failure():
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "simulated failure (failure_rate)")
            return
        limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
        words = reply_words(messages, limit or config.max_tokens_default, fill=config.fill_replies)
        structured = self.server.structured(body)
        if structured is not None:
            words = [structured]  # one piece: guided decoding's JSON is never cut mid-way here
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        if body.get("stream"):
            self._stream(words, prompt_tokens)
        else:
            self._complete(words, prompt_tokens)

    def _embeddings(self) -> None:
        # vLLM's EmbeddingRequest/EmbeddingResponse (pooling runner): `input` is a string or a
        # list of strings; vectors come back in input order, as floats or base64 float32.
        body = self._read_request()
        if body is None:
            return
        config = self.server.config
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            self._error(
                HTTPStatus.BAD_REQUEST, "input must be a string or a non-empty list of them"
            )
            return
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            self._error(HTTPStatus.BAD_REQUEST, f"encoding_format {encoding!r} is not supported")
            return
        try:
            import static_model
        except ImportError:
            self._error(
                HTTPStatus.NOT_IMPLEMENTED,
                "the simulation embeds with tokenlearn-static-model, which is not installed: "
                "pip install 'archon-vllm[council]'",
            )
            return
        dimensions = body.get("dimensions")
        if dimensions not in (None, EMBEDDING_DIMENSION):
            self._error(
                HTTPStatus.BAD_REQUEST,
                f"dimensions {dimensions!r}: the model has {EMBEDDING_DIMENSION} and no matryoshka",
            )
            return
        vectors = static_model.get_embeddings(texts)
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": (
                    base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()
                    if encoding == "base64"
                    else v
                ),
            }
            for i, v in enumerate(vectors)
        ]
        tokens = sum(len(t.split()) for t in texts)
        self._send_json(
            HTTPStatus.OK,
            {
                "id": f"embd-{uuid.uuid4().hex}",
                "object": "list",
                "created": int(time.time()),
                "model": config.model,
                "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _base(self) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": self.server.config.model,
        }

    def _complete(self, words: list[str], prompt_tokens: int) -> None:
        config = self.server.config
        time.sleep(config.first_token_latency_s + config.token_latency_s * (len(words) - 1))
        body = self._base() | {
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "finish_reason": "length",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
            },
        }
        self._send_json(HTTPStatus.OK, body)

    def _stream(self, words: list[str], prompt_tokens: int) -> None:
        config = self.server.config
        self.send_response(HTTPStatus.OK)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header(SIMULATION_HEADER, "true")
        # No content-length: the stream ends when the server closes the connection.
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        base = self._base() | {"object": "chat.completion.chunk"}

        def event(delta: dict[str, Any], finish: str | None) -> None:
            chunk = base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        time.sleep(config.first_token_latency_s)
        event({"role": "assistant", "content": ""}, None)
        for i, word in enumerate(words):
            if i:
                time.sleep(config.token_latency_s)
            event({"content": word if i == 0 else " " + word}, None)
        event({}, "length")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many clients connecting at once overflow socketserver's default listen backlog of 5: the
    # kernel resets or drops the excess connections.
    request_queue_size = 1024

    def __init__(self, config: SimulationConfig, port: int) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self.config = config
        self.started = int(time.time())
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()
        self._script = {name: list(replies) for name, replies in config.structured_script}
        self._structured_served: dict[str, int] = {}

    def draw_failure(self) -> bool:
        with self._lock:
            return self._random.random() < self.config.failure_rate

    def structured(self, body: dict[str, Any]) -> str | None:
        with self._lock:
            return structured_reply(body, self._script, self._structured_served)


class SimulationServer(LoopbackServer):
    """A running simulation on loopback; `url` is its base URL."""

    def __init__(self, config: SimulationConfig | None = None, port: int = 0) -> None:
        self.config = config or SimulationConfig()
        super().__init__(_Server(self.config, port), "archon-vllm-simulation")


@contextmanager
def serve(config: SimulationConfig | None = None, port: int = 0) -> Iterator[SimulationServer]:
    """Run the simulation for the duration of a `with` block (port 0: an ephemeral port)."""
    server = SimulationServer(config, port).start()
    try:
        yield server
    finally:
        server.close()
