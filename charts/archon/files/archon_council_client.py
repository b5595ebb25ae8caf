"""The council's OpenAI-compatible client of the gateway: one call per archetype, a failure
returned as the answer's error (the council goes on without it), one error for a refused key.

Runs inside the LiteLLM container (standard library and httpx only) and in `archon council`;
see archon_council.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

# How the chart marks the gateway's entries that are no persona (templates/gateway/_helpers.tpl).
BASE_MODE_KEY = "archon_mode"
BASE_MODE = "base"
COUNCIL_MODE = "council"
RUNNER_KEY = "archon_runner"
POOLING_RUNNER = "pooling"  # an embedding model: no chat

Messages = list[dict[str, Any]]
OnDelta = Callable[[str, str], None]  # (archetype, text) for every streamed piece


class CouncilError(Exception):
    """A council that cannot run at all (no member, a refused key): one line for the user."""


class AuthRefused(CouncilError):
    """The gateway refused the API key: no archetype can answer."""


class GatewayUnreachable(CouncilError):
    """The gateway did not answer at all."""


@dataclass
class Answer:
    archetype: str
    text: str = ""
    latency_s: float = 0.0
    error: str | None = None
    first_token_s: float | None = None
    # A `council` field beside `choices` (the gateway's council model puts its deliberation there).
    council: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "archetype": self.archetype,
            "ok": self.ok,
            "text": self.text,
            "latency_s": round(self.latency_s, 3),
            "first_token_s": None if self.first_token_s is None else round(self.first_token_s, 3),
            "error": self.error,
        }


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error)[:200]
    return str(error)[:200]


def _is_auth_failure(response: httpx.Response) -> bool:
    if response.status_code in (401, 403):
        return True
    # LiteLLM without a database answers an unknown key with 400 `no_db_connection`.
    if response.status_code == 400:
        try:
            error = response.json().get("error", {})
        except (ValueError, AttributeError):
            return False
        return isinstance(error, dict) and error.get("type") in ("no_db_connection", "auth_error")
    return False


class GatewayClient:
    """Async client of one OpenAI-compatible gateway; `async with GatewayClient(...) as c`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            # One connection per concurrent voice: the default pool of 10 would queue a
            # large council behind itself.
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            transport=transport,
        )

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _refused(self, response: httpx.Response) -> AuthRefused:
        return AuthRefused(
            f"the gateway at {self.base_url} refused the API key "
            f"(HTTP {response.status_code}: {_error_text(response)})"
        )

    async def models(self, *, archetypes_only: bool = True) -> list[str]:
        """The models the gateway lists. With `archetypes_only`, without the base model, the
        council itself and embedding models (the chart marks them `archon_mode: base`, `council`
        and `archon_runner: pooling`): none of them is a persona that chats, so they stay out of
        a default fan-out. LiteLLM's /model/info tells which
        entries they are; a gateway that does not answer it leaves the list as /v1/models
        gives it."""
        try:
            response = await self._http.get("/v1/models")
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(
                f"cannot reach the gateway at {self.base_url}: {type(exc).__name__}"
            ) from exc
        if _is_auth_failure(response):
            raise self._refused(response)
        if response.status_code != 200:
            raise GatewayUnreachable(
                f"GET {self.base_url}/v1/models answered HTTP {response.status_code}: "
                f"{_error_text(response)}"
            )
        listed = [str(m["id"]) for m in response.json().get("data", [])]
        if not archetypes_only:
            return listed
        skipped = await self._models_without_persona()
        return [name for name in listed if name not in skipped]

    async def _models_without_persona(self) -> set[str]:
        try:
            response = await self._http.get("/model/info")
            if response.status_code != 200:
                return set()
            entries = response.json().get("data") or []
        except (httpx.HTTPError, ValueError, AttributeError):
            return set()
        return {
            str(entry.get("model_name"))
            for entry in entries
            if isinstance(entry, dict)
            and isinstance(entry.get("model_info"), dict)
            and (
                entry["model_info"].get(BASE_MODE_KEY) in (BASE_MODE, COUNCIL_MODE)
                or entry["model_info"].get(RUNNER_KEY) == POOLING_RUNNER
            )
        }

    async def chat(
        self,
        archetype: str,
        messages: Messages,
        *,
        stream: bool = False,
        on_delta: OnDelta | None = None,
        response_format: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Answer:
        """One archetype's answer; a failure comes back as `Answer.error`, never raised, so the
        council goes on without it. A refused key raises: no archetype could answer."""
        body: dict[str, Any] = {"model": archetype, "messages": messages, "stream": stream}
        if response_format is not None:
            body["response_format"] = response_format
        if metadata:
            body["metadata"] = metadata
        answer = Answer(archetype)
        start = time.perf_counter()
        try:
            # A whole-call deadline: httpx's timeout is per read, and a stream that trickles
            # tokens would never hit it.
            async with asyncio.timeout(self.timeout_s):
                if stream:
                    await self._stream(body, answer, start, on_delta)
                else:
                    await self._complete(body, answer)
        except (TimeoutError, httpx.TimeoutException):
            answer.error = f"timed out after {self.timeout_s:g} s"
        except httpx.HTTPError as exc:
            answer.error = f"{type(exc).__name__}: {exc}"[:200]
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            answer.error = f"unreadable reply: {type(exc).__name__}: {exc}"[:200]
        answer.latency_s = time.perf_counter() - start
        return answer

    async def _complete(self, body: dict[str, Any], answer: Answer) -> None:
        response = await self._http.post("/v1/chat/completions", json=body)
        if _is_auth_failure(response):
            raise self._refused(response)
        if response.status_code != 200:
            answer.error = f"HTTP {response.status_code}: {_error_text(response)}"
        else:
            data = response.json()
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError(f"the message is a {type(message).__name__}, not an object")
            answer.text = str(message.get("content") or "")
            if isinstance(data.get("council"), dict):
                answer.council = data["council"]

    async def _stream(
        self, body: dict[str, Any], answer: Answer, start: float, on_delta: OnDelta | None
    ) -> None:
        async with self._http.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                if _is_auth_failure(response):
                    raise self._refused(response)
                answer.error = f"HTTP {response.status_code}: {_error_text(response)}"
                return
            parts: list[str] = []
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if not isinstance(chunk, dict):
                    raise TypeError(f"a stream chunk is a {type(chunk).__name__}, not an object")
                if chunk.get("error"):
                    # LiteLLM ends a stream that failed upstream with an error event: what came
                    # before it is a cut-off answer, not an answer.
                    error = chunk["error"]
                    detail = error.get("message") if isinstance(error, dict) else error
                    answer.error = f"the stream failed: {detail}"[:200]
                    return
                if isinstance(chunk.get("council"), dict):
                    answer.council = chunk["council"]
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        if answer.first_token_s is None:
                            answer.first_token_s = time.perf_counter() - start
                        parts.append(piece)
                        if on_delta is not None:
                            on_delta(answer.archetype, piece)
            answer.text = "".join(parts)
