"""A real Kubernetes control plane (etcd, apiserver, controller-manager, scheduler) on 127.0.0.1,
with simulated nodes (simnode.py) and/or real nodes (realnodes.py)."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from ..ports import free_ports
from .binaries import REPO_ROOT, VERSIONS, ensure_binaries, find_etcd
from .errors import ClusterError
from .keep import (
    Inventory,
    Kept,
    drop_stack_data,
    forget_kept,
    mark_nodes_unknown,
    read_inventory,
    read_kept,
    write_kept,
)
from .kubeconfig import ClientConfig, load_client_config, write_kubeconfig
from .netplan import NetPlan
from .nodespec import NodeSpec
from .pki import ensure_sa_keypair, write_token_file
from .procs import ProcessRecord, is_alive, read_pids, spawn, terminate, write_pids
from .readiness import default_sa_exists, etcd_healthy, nodes_ready, readyz
from .realaccess import RealNodeAccess
from .realcheck import install_node_packages
from .realnodes import RealNodes, containerd_version
from .realnodes import nodes_ready as real_nodes_ready
from .realstop import stop_processes, teardown

# No node IPAM, node lifecycle, attach/detach or TTL controllers: nodes are ours to manage.
CONTROLLERS = "*,-nodeipam,-nodelifecycle,-attachdetach,-ttl"
# Before 1.31 the controller-manager also ran cloud controllers that a cluster without a cloud
# must switch off.
CLOUD_CONTROLLERS = ",-route,-service,-cloud-node-lifecycle"
# From 1.34 on it publishes the API server's serving CA as a ClusterTrustBundle; our self-signed
# serving certificate is not a CA, so that publisher would only log errors.
TRUST_BUNDLE_PUBLISHER = ",-kube-apiserver-serving-clustertrustbundle-publisher-controller"


def controllers() -> str:
    """The controller-manager's --controllers for the configured Kubernetes version."""
    minor = VERSIONS.minor
    cloud = CLOUD_CONTROLLERS if minor < 31 else ""
    return CONTROLLERS + cloud + (TRUST_BUNDLE_PUBLISHER if minor >= 34 else "")


SIMNODE_MODULE = "devtools.localcluster.simnode"


def _say(msg: str) -> None:
    print(f"[localcluster] {msg}", file=sys.stderr, flush=True)


class LocalCluster(RealNodeAccess):
    """A detached local control plane with simulated and/or real nodes, recorded under
    ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        nodes: NodeSpec | None = None,
        *,
        keep_data: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.state_dir = Path(state_dir).expanduser().absolute()
        self.nodes = nodes or NodeSpec()
        self.keep_data = keep_data
        self.timeout = timeout
        self._resume = False  # whether this start runs on kept data
        self._children: list[subprocess.Popen[bytes]] = []
        self._records: list[ProcessRecord] = []
        self._argv: dict[str, list[str]] = {}
        self._ready: dict[str, Callable[[], bool]] = {}
        self._apiserver_match = ""
        self._real = RealNodes(self.state_dir, self.log_dir)

    # -- layout -------------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        """Path of the admin kubeconfig (valid while the cluster runs)."""
        return self.state_dir / "kubeconfig"

    @property
    def pids_file(self) -> Path:
        """Path of the JSON file recording the started processes."""
        return self.state_dir / "pids.json"

    @property
    def log_dir(self) -> Path:
        """Directory holding one ``<name>.log`` per process."""
        return self.state_dir / "logs"

    @property
    def etcd_dir(self) -> Path:
        """etcd data directory (deleted on stop unless keep_data)."""
        return self.state_dir / "etcd"

    @property
    def cert_dir(self) -> Path:
        """Directory where the apiserver writes its self-signed serving certificate."""
        return self.state_dir / "certs"

    @property
    def pki_dir(self) -> Path:
        """Directory with the service-account key pair and the token file."""
        return self.state_dir / "pki"

    def log_tail(self, name: str, lines: int = 30) -> str:
        """Return the last lines of a process log (empty if there is none)."""
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- state --------------------------------------------------------------------------------

    def client_config(self) -> ClientConfig:
        """Return server, token and CA read from the kubeconfig."""
        return load_client_config(self.kubeconfig)

    def inventory(self) -> Inventory | None:
        """How many services and projects the running cluster holds; None if it cannot tell."""
        if not self.kubeconfig.is_file():
            return None
        try:
            with self.client_config().client(timeout=3.0) as c:
                return read_inventory(c)
        except (httpx.HTTPError, OSError, ValueError, KeyError, StopIteration):
            return None

    def kept(self) -> Kept | None:
        """The record of a `stop` that kept the data, which the next start resumes on."""
        return read_kept(self.state_dir)

    def is_running(self) -> bool:
        """Tell whether every recorded process is alive and the API server answers /readyz."""
        records = read_pids(self.pids_file)
        if not records or not all(is_alive(r) for r in records):
            return False
        if not self.kubeconfig.is_file():
            return False
        try:
            with self.client_config().client(timeout=3.0) as c:
                return c.get("/readyz").status_code == 200
        except (httpx.HTTPError, OSError, ValueError, KeyError, StopIteration):
            return False

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the cluster (no-op if it already runs) and wait until nodes are Ready; resume
        on the data a `stop` kept (keep_data) when there is some."""
        if self.is_running():
            _say(f"already running; kubeconfig: {self.kubeconfig}")
            return
        self._resume = self.keep_data or self.kept() is not None
        leftovers = read_pids(self.pids_file)
        if leftovers:
            _say("stopping leftovers of a previous, incomplete start")
            terminate(leftovers)
            self.pids_file.unlink(missing_ok=True)
        t0 = time.monotonic()
        _say(f"starting {self._summary()}")
        try:
            self._start(t0)
        except BaseException:
            # A failed resume keeps what it resumed on: the next start tries again.
            self.stop(keep=self._resume)
            raise
        forget_kept(self.state_dir)
        _say(f"cluster ready in {time.monotonic() - t0:.1f}s")

    def _summary(self) -> str:
        n = self.nodes
        parts = [f"Kubernetes {VERSIONS.k8s} control plane"]
        if n.count:
            parts.append(f"{n.count} simulated node(s)")
        if n.real:
            parts.append(
                f"{n.real} real node(s) (kubelet {VERSIONS.k8s}, containerd {containerd_version()},"
                " runc, bridge CNI, kube-proxy)"
            )
        return ", ".join(parts)

    def stop(self, *, keep: bool | None = None) -> None:
        """Stop the recorded processes (SIGTERM, then SIGKILL after ~10 s); real nodes go first
        (pods, kubelet, containerd), their network and host changes last. With keep (default:
        keep_data) the etcd data, the real nodes' volumes and the local S3 server's data stay,
        recorded in kept.json for the next start; without, they are deleted, kept or not."""
        keep = self.keep_data if keep is None else keep
        if keep:
            # Recorded first: the local S3 server, which stops when the cluster's processes
            # are gone, reads it to know whether to keep its data.
            if self.etcd_dir.is_dir() and (self.kept() is None or self.is_running()):
                write_kept(self.state_dir, self.inventory(), datetime.datetime.now(datetime.UTC))
        else:
            forget_kept(self.state_dir)
        records = read_pids(self.pids_file) or list(self._records)
        killed: list[str] = []
        real = self._real.load()
        if real:
            records, killed = stop_processes(self._real, records, self.kubeconfig)
        # The apiserver shuts down faster and more quietly while etcd still answers.
        first = [r for r in records if r.name != "etcd"]
        last = [r for r in records if r.name == "etcd"]
        killed += terminate(first) + terminate(last)
        if killed:
            _say(f"had to SIGKILL: {', '.join(killed)}")
        for child in self._children:
            if child.poll() is None:
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    # Never let a slow shutdown hide the error that made us stop.
                    child.kill()
                    child.wait()
        self._children.clear()
        self._records.clear()
        self.pids_file.unlink(missing_ok=True)
        self.kubeconfig.unlink(missing_ok=True)
        if not keep:
            shutil.rmtree(self.etcd_dir, ignore_errors=True)
            drop_stack_data(self.state_dir)
        if real:
            problems = teardown(self._real, keep_volumes=keep)
            if problems:
                _say("real-node teardown left: " + "; ".join(problems))
        if not keep:
            # Also when the nodes' record is gone: volumes a previous, kept stop left.
            shutil.rmtree(self._real.volumes_dir, ignore_errors=True)

    def restart_apiserver(self, down_seconds: float = 0.0) -> None:
        """Stop the kube-apiserver (SIGTERM), keep it down `down_seconds`, and start it again
        on the same port with the same data: what clients see when the API server restarts.
        Only for a cluster started by this object."""
        self._stop_apiserver(kill=False)
        time.sleep(down_seconds)
        self.start_apiserver()

    def kill_apiserver(self) -> None:
        """SIGKILL the kube-apiserver (no graceful shutdown: open requests and watches just
        break) and leave it down; `start_apiserver` brings it back on the same port, certs and
        etcd. Only for a cluster started by this object."""
        self._stop_apiserver(kill=True)
        _say("kube-apiserver killed (SIGKILL)")

    def start_apiserver(self) -> None:
        """Start the kube-apiserver stopped by `kill_apiserver` again and wait until ready."""
        name = "kube-apiserver"
        if name not in self._argv or any(r.name == name for r in self._records):
            raise ClusterError("start_apiserver needs an API server stopped by this object")
        self._spawn(name, self._argv[name], self._apiserver_match)
        self._wait(name, self._ready[name], self.timeout)
        _say(f"kube-apiserver restarted (pid {self._records[-1].pid})")

    def _stop_apiserver(self, *, kill: bool) -> None:
        name = "kube-apiserver"
        record = next((r for r in self._records if r.name == name), None)
        if record is None or name not in self._argv:
            raise ClusterError("restarting the API server needs a cluster started by this object")
        index = self._records.index(record)
        child = self._children.pop(index)
        if kill:
            child.kill()
        else:
            terminate([record])
        child.wait(timeout=10)
        self._records.remove(record)
        self._apiserver_match = record.match
        write_pids(self.pids_file, self._records)

    # -- internals ----------------------------------------------------------------------------

    def _spawn(
        self, name: str, argv: list[str], match: str, env: dict[str, str] | None = None
    ) -> None:
        record, proc = spawn(name, argv, self.log_dir, match, env=env, cwd=self.state_dir)
        self._argv[name] = argv
        self._records.append(record)
        self._children.append(proc)
        # Record right away so `stop` from another process can clean up a half-started cluster.
        write_pids(self.pids_file, self._records)

    def _start(self, t0: float) -> None:
        bins = ensure_binaries()
        etcd = find_etcd()
        if not self._resume:
            shutil.rmtree(self.etcd_dir, ignore_errors=True)
            drop_stack_data(self.state_dir)
        shutil.rmtree(self.log_dir, ignore_errors=True)
        for d in (self.state_dir, self.etcd_dir, self.cert_dir, self.pki_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.etcd_dir, 0o700)
        sa_key, sa_pub = self.pki_dir / "sa.key", self.pki_dir / "sa.pub"
        ensure_sa_keypair(sa_key, sa_pub)
        token_file = self.pki_dir / "tokens.csv"
        token = write_token_file(token_file)
        etcd_port, peer_port, api_port = free_ports(3)
        real = self._real if self.nodes.real else None
        real_flags: list[str] = []
        if real:
            install_node_packages(_say)
            kept_bridge = self._last_bridge() if self._resume else None
            real_flags = real.prepare(self.nodes, self.cert_dir, token_file, api_port)
            _say(f"real-node network {real.plan.bridge} up ({time.monotonic() - t0:.1f}s)")
            if kept_bridge and kept_bridge != real.plan.bridge:
                # Kept Services keep their ClusterIPs, and services their S3 address, of the
                # network they were made on.
                _say(
                    f"the kept state's network {kept_bridge} is taken by another cluster: kept"
                    " Services and S3 addresses may not answer; `make dev-cluster-stop` drops it"
                )

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                str(etcd),
                "--name",
                "default",
                "--data-dir",
                str(self.etcd_dir),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                peer_url,
                "--initial-advertise-peer-urls",
                peer_url,
                "--initial-cluster",
                f"default={peer_url}",
                "--unsafe-no-fsync",
            ],
            match=str(etcd),
        )
        self._wait("etcd", lambda: etcd_healthy(etcd_url), 20.0)
        _say(f"etcd up on :{etcd_port} ({time.monotonic() - t0:.1f}s)")

        apiserver = bins / "kube-apiserver"
        self._spawn(
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={self.cert_dir}",
                f"--secure-port={api_port}",
                "--bind-address=127.0.0.1",
                *(
                    real_flags
                    or [
                        "--advertise-address=127.0.0.1",
                        # Current releases refuse a loopback address in the `kubernetes`
                        # Service's endpoints; nothing in the cluster reaches the API server
                        # through it. (Real nodes advertise the gateway, DNATed to 127.0.0.1.)
                        "--endpoint-reconciler-type=none",
                        "--service-cluster-ip-range=10.96.0.0/16",
                        "--authorization-mode=RBAC",
                    ]
                ),
                *_before_1_24("--insecure-port=0"),
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--token-auth-file={token_file}",
                "--enable-admission-plugins=NamespaceLifecycle,ResourceQuota,LimitRanger",
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                "--profiling=false",
                # The simulated kubelet is reached by IP: never a DNS lookup of a node name.
                "--kubelet-preferred-address-types=InternalIP",
            ],
            match=str(apiserver),
        )
        server = f"https://127.0.0.1:{api_port}"
        insecure = ClientConfig(server=server, token=token, ca_file=None)
        self._ready["kube-apiserver"] = lambda: readyz(insecure)
        self._wait("kube-apiserver", self._ready["kube-apiserver"], self.timeout)
        _say(f"kube-apiserver ready on :{api_port} ({time.monotonic() - t0:.1f}s)")

        ca = self.cert_dir / "apiserver.crt"
        verified = ClientConfig(server=server, token=token, ca_file=ca)
        ca_works = readyz(verified)
        if not ca_works:
            _say("TLS verification against apiserver.crt failed; kubeconfig skips verification")
        write_kubeconfig(self.kubeconfig, server, token, ca if ca_works else None)
        cfg = verified if ca_works else insecure
        if self._resume:
            with cfg.client(timeout=5.0) as client:
                marked = mark_nodes_unknown(client)
            if marked:
                _say(f"kept node(s) {', '.join(marked)}: Ready again once they report")

        cm = bins / "kube-controller-manager"
        self._spawn(
            "kube-controller-manager",
            [
                str(cm),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={controllers()}",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={ca}",
                "--leader-elect=false",
                "--secure-port=0",
                *_before_1_24("--port=0"),
                "--use-service-account-credentials=false",
            ],
            match=str(cm),
        )
        sched = bins / "kube-scheduler"
        self._spawn(
            "kube-scheduler",
            [
                str(sched),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                *_before_1_24("--port=0"),
            ],
            match=str(sched),
        )
        env = _python_env()
        if self.nodes.count:
            self._spawn(
                "simnode",
                [
                    sys.executable,
                    "-m",
                    SIMNODE_MODULE,
                    "--kubeconfig",
                    str(self.kubeconfig),
                    *self.nodes.cli_args(),
                ],
                match=SIMNODE_MODULE,
                env=env,
            )
        if real:
            real.start(self._spawn, self._wait, ca, self.nodes.real_max_pods)
            _say(f"containerd, kubelet, kube-proxy started ({time.monotonic() - t0:.1f}s)")
            real.start_helpers(self._spawn, self._wait, self.kubeconfig, self.nodes, env)

        with cfg.client(timeout=5.0) as client:
            self._wait("kube-controller-manager", lambda: default_sa_exists(client), self.timeout)
            _say(f"controller-manager up ({time.monotonic() - t0:.1f}s)")
            names = self.nodes.node_names()
            if names:
                self._wait("simnode", lambda: nodes_ready(client, names), self.timeout)
                _say(f"{len(names)} simulated node(s) Ready ({time.monotonic() - t0:.1f}s)")
            if real:
                first = f"kubelet-{real.names[0]}"
                check = lambda: real_nodes_ready(client, real.names)  # noqa: E731
                self._wait(first, check, self.timeout)
                _say(f"{len(real.names)} real node(s) Ready ({time.monotonic() - t0:.1f}s)")

    def _last_bridge(self) -> str | None:
        """The bridge of the network the real nodes had last time (realnodes.claim_network)."""
        try:
            index = int((self.state_dir / "last-network-index").read_text())
            return NetPlan(index, self.nodes.real).bridge
        except (OSError, ValueError):
            return None

    def _wait(self, name: str, check: Callable[[], bool], timeout: float) -> None:
        """Poll check until true; fail early with the log tail if the process dies."""
        deadline = time.monotonic() + timeout
        record = next(r for r in self._records if r.name == name)
        while True:
            try:
                if check():
                    return
            except (httpx.HTTPError, OSError):
                pass
            if not is_alive(record):
                raise ClusterError(f"{name} exited during start; log tail:\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{name} not ready after {timeout:.0f}s; log tail:\n{self.log_tail(name)}"
                )
            time.sleep(0.2)


def _before_1_24(*flags: str) -> tuple[str, ...]:
    """Flags that Kubernetes removed in 1.24 (the insecure ports), kept for the Debian route."""
    return flags if VERSIONS.minor < 24 else ()


def _python_env() -> dict[str, str]:
    """The environment of our Python helpers: this repository importable, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env
