"""A thin client for Prometheus's instant-query HTTP API, for release analysis.

Analysis needs one number per query (or, for histogram buckets, one number per value of a
label), evaluated at a given time, and must tell "no data"
apart from "Prometheus is broken": an empty result or NaN is `None` (no data), while every
failure — connection refused, timeout, HTTP 4xx/5xx, `status: error`, a result that is not
one number — raises `AnalysisError` with a message fit for an Event. Messages show the
Prometheus address without any credentials it may carry.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
_BODY_EXCERPT = 200


class AnalysisError(Exception):
    """A query could not be answered; the message says why (never with credentials)."""


class PrometheusClient:
    """Instant queries against one Prometheus server (`url` may include a path prefix)."""

    def __init__(self, url: str, timeout: tuple[float, float] = (3.0, 10.0)):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"PrometheusClient({redact(self.url)!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def query(self, expr: str, at: datetime) -> float | None:
        """The value of `expr` at time `at`: one number, or None without data (empty or NaN)."""
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at.timestamp():.3f}"})
        return _single_value(data, expr)

    def query_by_label(self, expr: str, at: datetime, label: str) -> dict[str, float]:
        """Each series of the vector `expr` at `at`, keyed by its `label` value ({} for no data).

        Made for `sum by (le) (...)` over histogram buckets; NaN samples are left out.
        """
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at.timestamp():.3f}"})
        values: dict[str, float] = {}
        for sample in _vector(data, expr):
            metric = sample.get("metric") if isinstance(sample, dict) else None
            key = metric.get(label) if isinstance(metric, dict) else None
            if not isinstance(key, str) or key in values:
                raise AnalysisError(
                    f"query {expr!r} returned series without one distinct {label!r} each; "
                    f"expected one series per {label} (aggregate with sum by ({label}))"
                )
            value = _number(sample.get("value"), expr)
            if value is not None:
                values[key] = value
        return values

    def _get(self, path: str, params: dict[str, str]) -> Any:
        """The `data` of a successful answer; AnalysisError for everything else."""
        answer = self._send(path, params)
        try:
            body = answer.json()
        except ValueError:
            body = None
        where = redact(self.url)
        if not isinstance(body, dict) or "status" not in body:
            raise AnalysisError(
                f"Prometheus at {where} answered HTTP {answer.status_code}: "
                f"{answer.text[:_BODY_EXCERPT]!r}"
            )
        if body["status"] != "success":
            raise AnalysisError(
                f"Prometheus at {where} answered HTTP {answer.status_code}: "
                f"{body.get('errorType', 'error')}: {body.get('error', '(no message)')}"
            )
        return body.get("data")

    def _send(self, path: str, params: dict[str, str]) -> requests.Response:
        where = redact(self.url)
        try:
            return self._session.get(self.url + path, params=params, timeout=self.timeout)
        except requests.ConnectTimeout:
            raise AnalysisError(
                f"cannot reach Prometheus at {where}: no connection within {self.timeout[0]:g} s"
            ) from None
        except requests.Timeout:
            raise AnalysisError(
                f"Prometheus at {where} did not answer within {self.timeout[1]:g} s"
            ) from None
        except requests.RequestException as error:
            raise AnalysisError(f"cannot reach Prometheus at {where}: {_reason(error)}") from None


def redact(url: str) -> str:
    """`url` without user name or password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _reason(error: requests.RequestException) -> str:
    """The root cause of a connection failure in a few words ("Connection refused")."""
    found = _ERRNO_TEXT.search(str(error))
    return found.group(1).strip() if found else type(error).__name__


def _single_value(data: Any, expr: str) -> float | None:
    """One sample's value from a `scalar` or `vector` result."""
    if not isinstance(data, dict):
        raise AnalysisError(f"malformed answer to {expr!r}: no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result, expr)
    if kind != "vector" or not isinstance(result, list):
        raise AnalysisError(
            f"query {expr!r} returned a {kind}; expected a scalar or a single-series vector"
        )
    if not result:
        return None
    if len(result) > 1:
        raise AnalysisError(
            f"query {expr!r} returned {len(result)} series; expected one (aggregate with sum)"
        )
    sample = result[0]
    return _number(sample.get("value") if isinstance(sample, dict) else None, expr)


def _vector(data: Any, expr: str) -> list[Any]:
    """The samples of a `vector` result."""
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind != "vector" or not isinstance(result, list):
        raise AnalysisError(f"query {expr!r} returned a {kind}; expected a vector")
    return result


def _number(sample: Any, expr: str) -> float | None:
    """`[timestamp, "value"]` -> float; NaN -> None; infinities and garbage -> AnalysisError."""
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError, KeyError):
        raise AnalysisError(f"malformed sample in the answer to {expr!r}") from None
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise AnalysisError(f"query {expr!r} returned {sample[1]}")
    return value
