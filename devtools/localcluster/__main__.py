"""CLI: ``python -m devtools.localcluster {build,start,stop,status,check-real}``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .binaries import BinariesError, cache_dir, ensure_binaries
from .cluster import LocalCluster
from .errors import ClusterError
from .keep import (
    STACK_DATA,
    STACK_STATE,
    drop_warning,
    keep_notice,
    needs_confirmation,
    resume_message,
)
from .nodespec import NodeSpec
from .realcheck import real_nodes_possible


def default_state_dir() -> Path:
    """Return the default state directory of the development cluster."""
    return cache_dir() / "dev-cluster"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the CLI."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where pids, logs, certificates and the kubeconfig live",
    )
    p = argparse.ArgumentParser(
        prog="python -m devtools.localcluster",
        description="A local Kubernetes control plane without containers.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or find cached) control-plane binaries")
    d = NodeSpec()
    start = sub.add_parser("start", parents=[common], help="start the cluster (idempotent)")
    start.add_argument("--nodes", type=int, default=d.count, help="simulated nodes")
    start.add_argument(
        "--real-nodes",
        type=int,
        default=d.real,
        help="real nodes (kubelet, containerd, kube-proxy; needs root)",
    )
    start.add_argument(
        "--ingress-port", type=int, default=d.ingress_port, help="with real nodes; 0 = free"
    )
    start.add_argument("--no-dns", action="store_true", help="with real nodes: no cluster DNS")
    start.add_argument("--no-ingress", action="store_true", help="with real nodes: no ingress")
    start.add_argument("--cpu", default=d.cpu)
    start.add_argument("--memory", default=d.memory)
    start.add_argument("--pods", type=int, default=d.pods)
    start.add_argument("--gpus", type=int, default=d.gpus)
    start.add_argument("--gpu-nodes", type=int, default=d.gpu_nodes)
    start.add_argument("--gpu-product", default=d.gpu_product)
    start.add_argument(
        "--keep-data",
        action="store_true",
        help="reuse etcd data left by a previous stop (a `stop --keep-data` makes it automatic)",
    )
    stop = sub.add_parser("stop", parents=[common], help="stop the recorded processes")
    stop.add_argument(
        "--keep-data",
        action="store_true",
        help="keep etcd, the volumes and the local S3 data for the next start to resume on",
    )
    stop.add_argument(
        "--yes", action="store_true", help="drop the state without asking (at a terminal)"
    )
    sub.add_parser("status", parents=[common], help="tell whether the cluster runs")
    sub.add_parser("check-real", help="tell whether this machine can run real nodes, and why")
    return p


def stack_there(state_dir: Path) -> bool:
    """Whether the local S3 server runs, or left data, in the cluster's state dir."""
    return (state_dir / STACK_STATE).exists() or (state_dir / STACK_DATA).exists()


def confirm_drop(
    cluster: LocalCluster,
    *,
    yes: bool,
    interactive: bool,
    ask: Callable[[str], str] = input,
) -> bool:
    """Say what a stop without keep drops (when there is anything) and, at a terminal
    (interactive), ask; whether to go on."""
    stack = stack_there(cluster.state_dir)
    kept = cluster.kept()
    if cluster.is_running():
        inventory = cluster.inventory()
    elif kept is not None:
        inventory = kept.inventory
    elif stack:
        inventory = None
    else:
        return True  # nothing runs and nothing was kept: nothing to lose
    print(f"[dev-cluster-stop] {drop_warning(inventory, stack=stack)}", file=sys.stderr, flush=True)
    if not needs_confirmation(inventory, stack=stack, interactive=interactive, yes=yes):
        return True
    try:
        answer = ask("[dev-cluster-stop] drop it? [y/N] (YES=1 skips this question) ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "build":
            print(ensure_binaries())
            return 0
        if args.command == "check-real":
            possible, why = real_nodes_possible()
            print(f"{'yes' if possible else 'no'}: {why}")
            return 0 if possible else 1
        if args.command == "start":
            spec = NodeSpec(
                count=args.nodes,
                cpu=args.cpu,
                memory=args.memory,
                pods=args.pods,
                gpus=args.gpus,
                gpu_nodes=args.gpu_nodes,
                gpu_product=args.gpu_product,
                real=args.real_nodes,
                ingress_port=args.ingress_port,
                dns=not args.no_dns,
                ingress=not args.no_ingress,
            )
            cluster = LocalCluster(args.state_dir, spec, keep_data=args.keep_data)
            kept = None if cluster.is_running() else cluster.kept()
            if kept is not None:
                print(f"[dev-cluster] {resume_message(kept)}", file=sys.stderr, flush=True)
            try:
                cluster.start()
            except ClusterError as first:
                # A port taken between choosing and binding it, a daemon stopped under us: the
                # failed start cleaned up after itself, so one more try, loudly.
                print(f"start failed, trying once more: {first}", file=sys.stderr, flush=True)
                cluster.start()
            print(f"kubeconfig: {cluster.kubeconfig}", flush=True)
            if spec.real and spec.ingress:
                print(f"ingress: http://{cluster.ingress_address}", flush=True)
            return 0
        cluster = LocalCluster(args.state_dir, keep_data=getattr(args, "keep_data", False))
        if args.command == "stop":
            interactive = sys.stdin.isatty()
            if not args.keep_data and not confirm_drop(
                cluster, yes=args.yes, interactive=interactive
            ):
                print("[dev-cluster-stop] not stopped; nothing changed", file=sys.stderr)
                return 1
            cluster.stop()
            kept = cluster.kept()
            if args.keep_data and kept is not None:
                notice = keep_notice(kept.inventory, stack=stack_there(args.state_dir))
                print(f"[dev-cluster-stop] {notice}", file=sys.stderr)
            print("stopped")
            return 0
        if cluster.is_running():
            print(f"running; kubeconfig: {cluster.kubeconfig}")
            return 0
        print("not running")
        return 1
    except (ClusterError, BinariesError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
