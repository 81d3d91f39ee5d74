"""Count which version answered, the way the seed does with curl in a loop.

Requests go one after another over one keep-alive connection, so a weighted round robin
sees them in order. Traefik's is deterministic (earliest-deadline-first over 1/weight
steps): 100 consecutive requests over weights 90/10 give exactly 90/10, except that float
rounding can shift one answer in a few windows far from where the balancer started. A new
configuration starts a new balancer, so `wait_for_split` polls in batches until one batch
matches; a caller that then asserts the next batch checks exactness, not luck.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import requests

from canaryctl.examples.errorpage import PATH
from canaryctl.testing.processes import wait_until


def answer_label(response: requests.Response) -> str:
    """The version a backend reported, or `HTTP <status>` for an answer with no version."""
    try:
        version = response.json().get("version")
    except (ValueError, AttributeError):
        version = None
    return version if isinstance(version, str) else f"HTTP {response.status_code}"


def count_answers(
    session: requests.Session,
    url: str,
    host: str,
    count: int = 100,
    headers: Mapping[str, str] | None = None,
    path: str = PATH,
) -> Counter[str]:
    """Send `count` GETs with `Host: host` to `url + path`; count answers by `answer_label`."""
    answers: Counter[str] = Counter()
    request_headers = {"Host": host, **(headers or {})}
    for _ in range(count):
        answers[answer_label(session.get(url + path, headers=request_headers, timeout=5))] += 1
    return answers


def wait_for_split(
    session: requests.Session,
    url: str,
    host: str,
    expected: Mapping[str, int],
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> Counter[str]:
    """Send batches of sum(expected) requests until one batch is answered exactly `expected`."""
    wanted = Counter({label: n for label, n in expected.items() if n})
    total = sum(wanted.values())
    seen: list[Counter[str]] = []

    def matched() -> bool:
        seen.append(count_answers(session, url, host, total, headers))
        return seen[-1] == wanted

    try:
        wait_until(matched, timeout, f"answers {dict(wanted)} for host {host}", interval=0)
    except TimeoutError as error:
        raise TimeoutError(f"{error}; last batches: {[dict(c) for c in seen[-3:]]}") from None
    return seen[-1]
