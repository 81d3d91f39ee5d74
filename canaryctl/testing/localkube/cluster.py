"""A real kube-apiserver + etcd on loopback, for tests and `canaryctl demo`.

Watches, resourceVersions, 410 Gone after compaction, RBAC, ServiceAccount tokens and
Leases are the real thing here, because nothing is faked: the binaries are the pinned
Kubernetes release built by `build.py`. Each `LocalKube` owns a temp directory (data,
keys, kubeconfig) and two child processes; `stop()` removes all of them, and children
die with their parent even if it is killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

from canaryctl.testing.localkube.build import (
    KUBERNETES_VERSION,
    LocalKubeUnavailable,
    Progress,
    ensure_binaries,
)
from canaryctl.testing.processes import die_with_parent, free_port, terminate, wait_until

DIR_PREFIX = "canaryctl-localkube-"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class LocalKube:
    """One local control plane. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        workdir: str | os.PathLike | None = None,
        progress: Progress = print,
        version: str = KUBERNETES_VERSION,
    ):
        self.version = version
        self._progress = progress
        self._given_dir = Path(workdir) if workdir else None
        self.dir: Path | None = None
        self._etcd: subprocess.Popen | None = None
        self._apiserver: subprocess.Popen | None = None
        self.etcd_port = self.apiserver_port = 0

    # lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LocalKube:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalKube:
        """Build (if needed) and start etcd and kube-apiserver; wait until /readyz is ok."""
        self.bin = ensure_binaries(self.version, self._progress)
        _remove_stale_dirs()
        self.dir = self._make_dir()
        try:
            subprocess.run([str(self.bin / "pki"), str(self.pki)], check=True, capture_output=True)
            self._start_etcd()
            self.apiserver_port = free_port()
            self._start_apiserver()
            self._write_kubeconfig(self.kubeconfig, self.dir / "kubeconfig")
        except BaseException:
            self.stop()
            raise
        return self

    def server_pids(self) -> dict[str, int]:
        """The running servers' process ids by name (what a benchmark reads their CPU of)."""
        named = {"kube-apiserver": self._apiserver, "etcd": self._etcd}
        return {name: process.pid for name, process in named.items() if process is not None}

    def stop(self) -> None:
        """Stop both processes and delete the temp directory (unless the caller gave it)."""
        for process in (self._apiserver, self._etcd):
            terminate(process)
        self._apiserver = self._etcd = None
        if self.dir and not self._given_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self.dir:
            shutil.rmtree(self.dir / "state", ignore_errors=True)

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver and start it again on the same port; etcd keeps the data.

        An apiserver with open watches waits for them before exiting; a restart need not.
        """
        terminate(self._apiserver, grace=2)
        self._start_apiserver()

    def _make_dir(self) -> Path:
        if self._given_dir:
            self._given_dir.mkdir(parents=True, exist_ok=True)
            path = self._given_dir
        else:
            path = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        (path / "state").mkdir(exist_ok=True)
        (path / "state" / "owner.pid").write_text(str(os.getpid()))
        return path

    @property
    def started_dir(self) -> Path:
        """The directory of the running control plane; a RuntimeError before start()."""
        if self.dir is None:
            raise RuntimeError("the local control plane is not started")
        return self.dir

    @property
    def pki(self) -> Path:
        return self.started_dir / "state" / "pki"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in group system:masters)."""
        return self.started_dir / "state" / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    # processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        # The child gets its own copy of the log's descriptor; ours can close once it runs.
        with open(self.started_dir / "state" / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [str(self.bin / name), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def _start_etcd(self) -> None:
        self.etcd_port, peer_port = free_port(), free_port()
        peer = f"http://127.0.0.1:{peer_port}"
        self._etcd = self._spawn(
            "etcd",
            [
                "--name=localkube",
                f"--data-dir={self.started_dir / 'state' / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=localkube={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
                "--quota-backend-bytes=2147483648",
            ],
        )
        self._wait_ready(self._etcd, "etcd", lambda: _get_ok(f"{self.etcd_url}/health"))

    def _start_apiserver(self) -> None:
        pki = self.pki
        self._apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.started_dir / 'state' / 'certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/16",
                "--etcd-compaction-interval=0",
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--v=0",
            ],
        )
        self._wait_ready(self._apiserver, "kube-apiserver", self._apiserver_ready, timeout=90)

    def _apiserver_ready(self) -> bool:
        return _get_ok(
            f"{self.server}/readyz",
            cert=(str(self.pki / "admin.crt"), str(self.pki / "admin.key")),
            verify=str(self.pki / "ca.crt"),
        )

    def _wait_ready(
        self, process: subprocess.Popen, name: str, ready: Callable[[], bool], timeout: float = 30
    ) -> None:
        def up() -> bool:
            if process.poll() is not None:
                log_file = self.started_dir / "state" / f"{name}.log"
                log = log_file.read_text(errors="replace")[-3000:]
                raise LocalKubeUnavailable(f"{name} exited with {process.returncode}:\n{log}")
            return ready()

        wait_until(up, timeout, f"{name} to become ready")

    def _write_kubeconfig(self, *paths: Path) -> None:
        pki = self.pki

        def b64(name: str) -> str:
            return base64.b64encode((pki / name).read_bytes()).decode()

        text = KUBECONFIG_TEMPLATE.format(
            server=self.server, ca=b64("ca.crt"), cert=b64("admin.crt"), key=b64("admin.key")
        )
        for path in paths:
            path.write_text(text)
            path.chmod(0o600)

    # helpers for tests -------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        input: str | None = None,  # noqa: A002 -- the name subprocess.run uses; callers pass input=
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess:
        """Run the matching kubectl against this control plane; text in, text out."""
        result = subprocess.run(
            [str(self.bin / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        return result

    @property
    def kubectl_path(self) -> Path:
        return self.bin / "kubectl"

    def api_client(self):
        """A kubernetes.client.ApiClient with admin rights."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def create_namespace(self, name: str | None = None) -> str:
        """Create a namespace (a random `test-xxxxxxxx` one by default) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        return name

    def service_account_token(
        self, namespace: str, name: str, expiration_seconds: int = 3600
    ) -> str:
        """Mint a token for a ServiceAccount through the TokenRequest API."""
        from kubernetes import client

        with self.api_client() as api:
            request = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(
                    audiences=[SERVICE_ACCOUNT_ISSUER], expiration_seconds=expiration_seconds
                )
            )
            answer = client.CoreV1Api(api).create_namespaced_service_account_token(
                name, namespace, request
            )
        assert answer.status is not None and answer.status.token  # the apiserver fills both
        return answer.status.token

    def serviceaccount_mount(
        self, directory: Path, namespace: str, name: str, token: str | None = None
    ) -> Path:
        """Lay out in `directory` what the kubelet mounts for a pod running as ServiceAccount
        `namespace/name` (token, ca.crt, namespace); a token is minted unless given."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "token").write_text(token or self.service_account_token(namespace, name))
        (directory / "ca.crt").write_bytes((self.pki / "ca.crt").read_bytes())
        (directory / "namespace").write_text(namespace)
        return directory

    def can_i(self, user: str, verb: str, resource: str, *scope: str) -> str:
        """`kubectl auth can-i VERB RESOURCE SCOPE... --as=USER`: "yes" or "no". A warning
        (an unknown resource, say) raises, so it cannot pass for a "no"."""
        result = self.kubectl("auth", "can-i", verb, resource, *scope, f"--as={user}", check=False)
        if result.stderr:
            raise RuntimeError(f"kubectl auth can-i {verb} {resource}: {result.stderr.strip()}")
        return result.stdout.strip()

    def install_gateway_api(self, version: str | None = None) -> list[str]:
        """Install the Gateway API standard-channel CRDs; return their names once Established."""
        from canaryctl.testing.localkube import gateway_api

        return gateway_api.install(self, version or gateway_api.GATEWAY_API_VERSION, self._progress)

    def compact(self) -> int:
        """Compact etcd up to its current revision, so older resourceVersions answer 410.

        kube-apiserver's watch cache would keep serving old versions from memory, so the
        apiserver is restarted too: its fresh cache starts at the compacted revision and a
        watch from anything older gets `410 Expired`, as after a long disconnect in production.
        """
        header = requests.post(
            f"{self.etcd_url}/v3/kv/range",
            json={"key": base64.b64encode(b"/").decode()},
            timeout=10,
        ).json()["header"]
        revision = int(header["revision"])
        answer = requests.post(
            f"{self.etcd_url}/v3/kv/compaction",
            json={"revision": revision, "physical": True},
            timeout=30,
        )
        answer.raise_for_status()
        self.restart_apiserver()
        return revision


KUBECONFIG_TEMPLATE = """apiVersion: v1
kind: Config
clusters:
- name: localkube
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: localkube-admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: localkube
  context:
    cluster: localkube
    user: localkube-admin
current-context: localkube
"""


def _get_ok(url: str, **kwargs) -> bool:
    try:
        return requests.get(url, timeout=2, **kwargs).status_code == 200
    except requests.RequestException:
        return False


def _remove_stale_dirs() -> None:
    """Delete temp dirs of control planes whose owning process no longer exists (killed runs)."""
    for path in Path(tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        try:
            pid = int((path / "state" / "owner.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (OSError, ValueError):
            continue
