"""A real Prometheus server on loopback, scraping given targets, for tests and `demo --auto`.

Release analysis is tested against the real thing — PromQL evaluation, scrape timing,
`increase()` extrapolation, outages — so this runs the `prometheus` binary (Debian package
`prometheus`) with a generated configuration and a throw-away TSDB. `stop()` and `start()`
again keep the port and the data, so a test can simulate an outage and a recovery. The
process dies with the thread that started it (PR_SET_PDEATHSIG), even if that is killed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import requests

from canaryctl.testing.processes import die_with_parent, free_port, terminate, wait_until

BINARY = "prometheus"
DIR_PREFIX = "canaryctl-prometheus-"
JOB = "apisix"


@dataclass(frozen=True)
class ScrapeJob:
    """Another scrape job besides the gateway's, e.g. a controller's own /metrics."""

    name: str
    targets: tuple[str, ...]
    metrics_path: str = "/metrics"


class PrometheusUnavailable(RuntimeError):
    """The `prometheus` binary is missing or would not start."""


class PrometheusServer:
    """A Prometheus scraping `targets` (`host:port`) every `scrape_interval`; a context manager."""

    def __init__(
        self,
        targets: list[str],
        scrape_interval: str = "1s",
        metrics_path: str = "/apisix/prometheus/metrics",
        ready_timeout: float = 30.0,
        target_labels: dict[str, dict[str, str]] | None = None,
        extra_jobs: Sequence[ScrapeJob] = (),
    ):
        self.targets = list(targets)
        # labels per target, as service discovery would add them (e.g. namespace, service)
        self.target_labels = dict(target_labels or {})
        self.extra_jobs = list(extra_jobs)
        self.scrape_interval = scrape_interval
        self.metrics_path = metrics_path
        self.ready_timeout = ready_timeout
        self.port = 0
        self.dir: Path | None = None
        self._process: subprocess.Popen | None = None
        self._started_at = 0.0

    def __repr__(self) -> str:
        return f"PrometheusServer(url={self.url!r}, targets={self.targets!r})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self.running else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> PrometheusServer:
        """Start (or restart, on the same port and data) and wait until `/-/ready` answers 200."""
        if self.running:
            return self
        binary = shutil.which(BINARY)
        if binary is None:
            raise PrometheusUnavailable(
                f"`{BINARY}` is not on PATH (Debian/Ubuntu: apt-get install prometheus)"
            )
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
            self.port = free_port()
            (self.dir / "prometheus.yml").write_text(json.dumps(self._config(), indent=2))
        self._started_at = time.time()
        with open(self.dir / "prometheus.log", "ab") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        try:
            wait_until(self._ready, self.ready_timeout, "Prometheus to become ready")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the process; the port, configuration and data stay for `start()`."""
        terminate(self._process)
        self._process = None

    def close(self) -> None:
        """Stop and delete the temp directory."""
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def wait_scraped(self, timeout: float = 30.0) -> None:
        """Wait until every target has been scraped successfully since the last `start()`.

        Prometheus 2.x hands new targets to its scrapers on a 5 s tick, so the first scrape
        after a start comes up to ~5 s later, whatever the scrape interval.
        """
        targets = self.targets + [t for job in self.extra_jobs for t in job.targets]
        wait_until(
            lambda: self._targets_scraped_since(self._started_at) >= len(targets),
            timeout,
            f"Prometheus to scrape {', '.join(targets)}",
        )

    def _config(self) -> dict:
        """prometheus.yml (JSON is YAML): one job scraping every target."""
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": self.metrics_path,
                    "static_configs": [
                        {"targets": [target], "labels": self.target_labels.get(target, {})}
                        for target in self.targets
                    ],
                },
                *(
                    {
                        "job_name": job.name,
                        "metrics_path": job.metrics_path,
                        "static_configs": [{"targets": list(job.targets)}],
                    }
                    for job in self.extra_jobs
                ),
            ],
        }

    def _ready(self) -> bool:
        process, directory = self._process, self.dir
        assert process is not None and directory is not None  # polled only by start()
        if process.poll() is not None:
            tail = (directory / "prometheus.log").read_text(errors="replace")[-3000:]
            raise PrometheusUnavailable(f"prometheus exited with {process.returncode}:\n{tail}")
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _targets_scraped_since(self, moment: float) -> int:
        # timestamp() of a plain selector is the sample's time (of an expression, the evaluation's)
        query = f"count(timestamp(up) > {moment:.3f} and up == 1)"
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5).json()
        result = answer["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0
