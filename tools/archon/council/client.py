"""An OpenAI-compatible chat client for the gateway: one call per archetype, never raising for
one archetype's failure (the council goes on without it), one clear error for a refused key."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from archon.errors import ArchonError, UsageError

Messages = list[dict[str, str]]
# How the chart marks the gateway's base-model entry (templates/gateway/_helpers.tpl).
BASE_MODE_KEY = "archon_mode"
BASE_MODE = "base"
OnDelta = Callable[[str, str], None]  # (archetype, text) for every streamed piece


class AuthRefused(ArchonError):
    """The gateway refused the API key: no archetype can answer."""


@dataclass
class Answer:
    archetype: str
    text: str = ""
    latency_s: float = 0.0
    error: str | None = None
    first_token_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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
    """Async client of one gateway; use as `async with GatewayClient(...) as client`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            # One connection per concurrent archetype: the default pool of 10 would queue a
            # large council behind itself.
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            transport=transport,
        )

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def _refused(self, response: httpx.Response) -> AuthRefused:
        return AuthRefused(
            f"the gateway at {self.base_url} refused the API key "
            f"(HTTP {response.status_code}: {_error_text(response)})",
            fix="export the gateway's master key in the variable --api-key-env names "
            "(default ARCHON_API_KEY)",
        )

    async def models(self) -> list[str]:
        """The archetypes the gateway serves, in its order; raises for an unreachable gateway or
        a refused key.

        The gateway also lists the base model (the chart's model_list entry marked
        `archon_mode: base`): it has no persona, so it is left out here, which keeps it out of a
        council's default fan-out. LiteLLM's /model/info tells which entry it is; a gateway that
        does not answer it leaves the list as /v1/models gives it.
        """
        listed = await self._listed()
        base = await self._base_models()
        return [name for name in listed if name not in base]

    async def _base_models(self) -> set[str]:
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
            and entry["model_info"].get(BASE_MODE_KEY) == BASE_MODE
        }

    async def _listed(self) -> list[str]:
        try:
            response = await self._http.get("/v1/models")
        except httpx.HTTPError as exc:
            raise UsageError(
                f"cannot reach the gateway at {self.base_url}: {type(exc).__name__}",
                fix="port-forward it (kubectl port-forward svc/<release>-archon-gateway "
                "4000:4000) or pass --gateway URL",
            ) from exc
        if _is_auth_failure(response):
            raise self._refused(response)
        if response.status_code != 200:
            raise UsageError(
                f"GET {self.base_url}/v1/models answered HTTP {response.status_code}: "
                f"{_error_text(response)}",
                fix="check that --gateway points at the archon gateway",
            )
        return [str(m["id"]) for m in response.json().get("data", [])]

    async def chat(
        self,
        archetype: str,
        messages: Messages,
        *,
        stream: bool = False,
        on_delta: OnDelta | None = None,
    ) -> Answer:
        body: dict[str, Any] = {"model": archetype, "messages": messages, "stream": stream}
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
        except (KeyError, IndexError, ValueError) as exc:
            answer.error = f"unreadable reply: {exc}"[:200]
        answer.latency_s = time.perf_counter() - start
        return answer

    async def _complete(self, body: dict[str, Any], answer: Answer) -> None:
        response = await self._http.post("/v1/chat/completions", json=body)
        if _is_auth_failure(response):
            raise self._refused(response)
        if response.status_code != 200:
            answer.error = f"HTTP {response.status_code}: {_error_text(response)}"
        else:
            choice = response.json()["choices"][0]
            answer.text = str(choice["message"].get("content") or "")

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
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        if answer.first_token_s is None:
                            answer.first_token_s = time.perf_counter() - start
                        parts.append(piece)
                        if on_delta is not None:
                            on_delta(answer.archetype, piece)
            answer.text = "".join(parts)
