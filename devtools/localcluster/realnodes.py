"""The real nodes of a local cluster: claim a network, start containerd, kubelet and kube-proxy
per node (each in its own network namespace), then the helpers (node agent, cluster DNS,
ingress). Stopping them is realstop.py's; what a `stop` from another process needs is in
``<state-dir>/realnodes.json``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..ports import free_port
from . import hostshare, netsetup, realnode
from .binaries import bin_dir
from .errors import ClusterError
from .images import PAUSE_IMAGE, builtin_archives, import_archive
from .kubeconfig import write_kubeconfig
from .netplan import NetPlan
from .nodespec import NodeSpec
from .pki import add_token_users, ensure_kubelet_client_pki
from .readiness import dns_answers, tcp_open

Spawn = Callable[..., None]  # (name, argv, match, env=None)
Wait = Callable[[str, Callable[[], bool], float], None]
STATE_FILE = "realnodes.json"
CLEAN_MARK = "clean-shutdown"
HELPER_PACKAGE = "devtools.localcluster"


class RealNodeError(ClusterError):
    """Real nodes could not be started."""


def token_users(names: list[str]) -> dict[str, str]:
    """The API identities of the node components: user -> groups (for the token file)."""
    users = {f"system:node:{n}": "system:nodes" for n in names}
    users["system:kube-proxy"] = ""
    return users


def ctr_binary() -> Path:
    """The ctr CLI of the containerd in use."""
    found = shutil.which("ctr") or "/usr/bin/ctr"
    return Path(found)


def containerd_version() -> str:
    """containerd's version, as `containerd --version` tells it."""
    out = subprocess.run(["containerd", "--version"], capture_output=True, text=True, check=False)
    words = out.stdout.split()
    return words[2] if len(words) > 2 else "unknown"


@dataclass(frozen=True)
class RealNodesState:
    """What start recorded: the network index, node names and the API server port."""

    index: int
    names: list[str]
    api_port: int = 0

    @property
    def plan(self) -> NetPlan:
        """The cluster's network plan."""
        return NetPlan(self.index, len(self.names))


class RealNodes:
    """The real nodes of the cluster whose state lives in ``state_dir``."""

    def __init__(self, state_dir: Path, log_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.state: RealNodesState | None = None
        self.tokens: dict[str, str] = {}
        self.client_ca = state_dir / "pki" / "kubelet-ca.crt"

    # -- layout -------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        """The record a later `stop` reads."""
        return self.state_dir / STATE_FILE

    @property
    def plan(self) -> NetPlan:
        """The network plan (after claim_network or load)."""
        if self.state is None:
            raise RuntimeError("no real nodes claimed")
        return self.state.plan

    @property
    def names(self) -> list[str]:
        """The real nodes' names."""
        return list(self.state.names) if self.state else []

    @property
    def ingress_file(self) -> Path:
        """``{"address": "127.0.0.1:PORT"}`` of the local ingress, for other processes."""
        return self.state_dir / "ingress.json"

    @property
    def volumes_dir(self) -> Path:
        """Where the local-path provisioner puts volume directories."""
        return self.state_dir / "volumes"

    def layout(self, k: int) -> realnode.NodeLayout:
        """Node k's directory layout."""
        return realnode.NodeLayout(self.state_dir / "nodes" / str(k), k, self.names[k])

    def load(self) -> bool:
        """Read the record of a start (once); tell whether there is one."""
        if self.state is not None:
            return True
        try:
            raw = json.loads(self.state_file.read_text())
            self.state = RealNodesState(int(raw["index"]), list(raw["names"]), int(raw["api_port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return True

    def _save(self) -> None:
        assert self.state is not None
        data = {
            "index": self.state.index,
            "names": self.state.names,
            "api_port": self.state.api_port,
        }
        self.state_file.write_text(json.dumps(data, indent=2))

    # -- start --------------------------------------------------------------------------------

    def prepare(self, spec: NodeSpec, cert_dir: Path, token_file: Path, api_port: int) -> list[str]:
        """Before the API server starts: claim the network and bring it up, add the node
        components' tokens and the kubelet client PKI; return the API server's own flags."""
        plan = self.claim_network(spec)
        # The serving certificate must name the gateway, which changes with the index.
        shutil.rmtree(cert_dir, ignore_errors=True)
        cert_dir.mkdir()
        ca, crt, key = ensure_kubelet_client_pki(self.client_ca.parent)
        self.client_ca = ca
        self.tokens = add_token_users(token_file, token_users(self.names))
        self.setup_network(api_port)
        return [
            f"--advertise-address={plan.gateway}",
            f"--service-cluster-ip-range={plan.service_cidr}",
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={crt}",
            f"--kubelet-client-key={key}",
        ]

    def claim_network(self, spec: NodeSpec) -> NetPlan:
        """Take a free network index (its bridge) and register with the host record."""
        last = self.state_dir / "last-network-index"
        preferred = int(last.read_text()) if last.is_file() and last.read_text().isdigit() else None
        # The same index as last time keeps addresses (and ClusterIPs kept in etcd) valid.
        plan = netsetup.claim_index(spec.real, preferred)
        last.write_text(str(plan.index))
        self.state = RealNodesState(plan.index, spec.real_node_names())
        self._save()
        hostshare.acquire(plan.bridge)
        return plan

    def setup_network(self, api_port: int) -> None:
        """Bring up the bridge, the host rules (API DNAT on api_port) and each node namespace."""
        assert self.state is not None
        self.state = RealNodesState(self.state.index, self.state.names, api_port)
        self._save()
        netsetup.setup_host(self.plan, api_port)
        for k in range(len(self.names)):
            layout = self.layout(k)
            layout.check()
            root = layout.containerd_root
            keep = (root.parent / CLEAN_MARK).is_file()
            stale = realnode.unmount_under(layout.base)
            if stale:
                raise netsetup.NetError(f"cannot unmount leftovers of a previous run: {stale}")
            # Keep imported images across clean restarts; anything else starts afresh.
            for child in layout.base.iterdir() if layout.base.is_dir() else []:
                if child.name != "containerd" or not keep:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            if keep:
                shutil.rmtree(layout.containerd_state, ignore_errors=True)
                (root.parent / CLEAN_MARK).unlink()
            layout.base.mkdir(parents=True, exist_ok=True)
            netsetup.setup_node(self.plan, k, layout.netns)

    def start(
        self,
        spawn: Spawn,
        wait: Wait,
        ca_file: Path,
        max_pods: int,
    ) -> None:
        """Start containerd, import the offline images, then kubelet and kube-proxy, per node."""
        plan, bins = self.plan, bin_dir()
        assert self.state is not None
        server = f"https://{plan.gateway}:{self.state.api_port}"
        archives = builtin_archives()
        for k, name in enumerate(self.names):
            layout = self.layout(k)
            realnode.write_files(layout, plan, PAUSE_IMAGE, self.client_ca, max_pods)
            realnode.prepare_cgroups(plan.cgroup_root(k))
            config = layout.file("containerd.toml")
            spawn(
                f"containerd-{name}",
                netsetup.in_netns(layout.netns, "containerd", "--config", str(config)),
                str(config),
            )
            wait(f"containerd-{name}", functools.partial(_containerd_up, layout.socket), 30.0)
            for archive in archives.values():
                import_archive(ctr_binary(), layout.socket, archive)
            kubeconfig = layout.file("kubelet.kubeconfig")
            write_kubeconfig(kubeconfig, server, self.tokens[f"system:node:{name}"], ca_file)
            write_kubeconfig(
                layout.file("kube-proxy.kubeconfig"),
                server,
                self.tokens["system:kube-proxy"],
                ca_file,
            )
            kubelet = bins / "kubelet"
            spawn(
                f"kubelet-{name}",
                netsetup.in_netns(
                    layout.netns,
                    str(kubelet),
                    f"--config={layout.file('kubelet.yaml')}",
                    f"--kubeconfig={kubeconfig}",
                    f"--root-dir={layout.kubelet_root}",
                    f"--cert-dir={layout.kubelet_root / 'pki'}",
                    f"--hostname-override={name}",
                    f"--node-ip={plan.node_ip(k)}",
                    "--node-labels=type=real,onyxia.dev/node=real",
                ),
                f"--root-dir={layout.kubelet_root}",
            )
            proxy = bins / "kube-proxy"
            spawn(
                f"kube-proxy-{name}",
                netsetup.in_netns(
                    layout.netns, str(proxy), f"--config={layout.file('kube-proxy.yaml')}"
                ),
                f"--config={layout.file('kube-proxy.yaml')}",
            )

    def import_image(self, archive: Path) -> None:
        """Import an OCI/Docker archive into every real node's containerd."""
        for k in range(len(self.names)):
            import_archive(ctr_binary(), self.layout(k).socket, archive)

    def start_helpers(
        self, spawn: Spawn, wait: Wait, kubeconfig: Path, spec: NodeSpec, env: dict[str, str]
    ) -> None:
        """Start the node agent (local-path volumes, taints), cluster DNS and the ingress
        (on spec.ingress_port, or a free port), and wait until they answer."""
        plan, kc = self.plan, ["--kubeconfig", str(kubeconfig)]
        port = spec.ingress_port or free_port()
        agent = [*kc, "--volumes", str(self.volumes_dir), *(f"--node={n}" for n in self.names)]
        helpers = [("nodeagent", agent)]
        if spec.dns:
            dns = [*kc, "--listen", plan.gateway, "--domain", "cluster.local"]
            helpers.append(("dns", [*dns, "--state-dir", str(self.state_dir / "dns")]))
        if spec.ingress:
            ingress = [*kc, "--listen", f"127.0.0.1:{port}"]
            helpers.append(("ingress", [*ingress, "--state-dir", str(self.state_dir / "ingress")]))
        for name, args in helpers:
            module = f"{HELPER_PACKAGE}.{name}"
            if not _importable(module):
                hint = (
                    f"; start without it with NodeSpec({name}=False)" if name != "nodeagent" else ""
                )
                raise RealNodeError(f"{module} is missing, and real nodes use it{hint}")
            spawn(name, [sys.executable, "-m", module, *args], module, env=env)
        if spec.dns:
            wait("dns", lambda: dns_answers(plan.gateway), 30.0)
        if spec.ingress:
            wait("ingress", lambda: tcp_open("127.0.0.1", port), 30.0)
            self.ingress_file.write_text(json.dumps({"address": f"127.0.0.1:{port}"}))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def nodes_ready(client: httpx.Client, names: list[str]) -> bool:
    """Tell whether every named real node is Ready with no NoSchedule/NoExecute taint."""
    r = client.get("/api/v1/nodes", params={"labelSelector": "type=real"})
    if r.status_code != 200:
        return False
    ready = set()
    for node in r.json().get("items", []):
        conds = node.get("status", {}).get("conditions", [])
        up = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        taints = [
            t
            for t in node.get("spec", {}).get("taints") or []
            if t.get("effect") != "PreferNoSchedule"
        ]
        if up and not taints:
            ready.add(node["metadata"]["name"])
    return set(names) <= ready


def _containerd_up(socket: Path) -> bool:
    if not socket.exists():
        return False
    done = subprocess.run(
        [str(ctr_binary()), "--address", str(socket), "version"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return done.returncode == 0
