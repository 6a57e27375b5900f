"""The local platform on a local cluster with real nodes: our images imported into each node,
and the settings that make the charts use them and their URLs open through the local ingress.

    python -m devtools.localplatform env --state-dir DIR   # prints `export ONYXIA_...=...` lines

Charts keep their production image defaults; `catalogs.image_overrides` points each chart at the
image built here (`localhost/onyxia/<name>:<hash>`, a name no registry serves), as an operator
points the same charts at their own registry's images. Service hosts are `<id>.lab.localhost`:
browsers resolve every `*.localhost` name to the loopback address themselves, so no DNS or
/etc/hosts entry is needed, and the ingress on 127.0.0.1 routes them by Host.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devtools import images
from devtools.localcluster import LocalCluster

LOCAL_DOMAIN = "lab.localhost"

# The image built here for each chart of charts/ (the GPU variants reuse the CPU images under
# their own names; RStudio has no image: see images/README.md).
CHART_IMAGES: dict[str, str] = {
    "jupyter-python": "jupyter",
    "jupyter-pytorch-gpu": "jupyter-pytorch-gpu",
    "vscode-python": "vscode",
    "vscode-pytorch-gpu": "vscode-pytorch-gpu",
    "mlflow": "mlflow",
    "label-studio": "label-studio",
}


def available_charts() -> dict[str, str]:
    """The charts whose image has a recipe here, with the image name."""
    known = set(images.names())
    return {chart: image for chart, image in CHART_IMAGES.items() if image in known}


def prepare_images(
    cluster: LocalCluster,
    charts: Sequence[str] | None = None,
    out: Callable[[str], None] = print,
) -> dict[str, str]:
    """Build (once, cached) and import the charts' images into every real node; chart -> ref."""
    wanted = {c: i for c, i in available_charts().items() if charts is None or c in charts}
    built: dict[str, images.BuiltImage] = {}
    for node in cluster.real_nodes:
        socket = str(cluster.containerd_socket(node))
        built = images.import_into(socket, sorted(set(wanted.values())), out=out)
    if not cluster.real_nodes:
        built = images.build(sorted(set(wanted.values())), out=out)
    return {chart: built[image].ref for chart, image in wanted.items()}


def url_template(cluster: LocalCluster) -> str:
    """Service URLs through the local ingress: http://{host}:PORT."""
    port = cluster.ingress_address.rsplit(":", 1)[1]
    return f"http://{{host}}:{port}"


def settings_overrides(cluster: LocalCluster, chart_images: dict[str, str]) -> dict[str, Any]:
    """Settings groups (as dicts) of a platform whose services run on the cluster's real nodes."""
    return {
        "region": {"domain": LOCAL_DOMAIN, "service_url_template": url_template(cluster)},
        "catalogs": {"image_overrides": dict(chart_images)},
    }


def environment(cluster: LocalCluster, chart_images: dict[str, str]) -> dict[str, str]:
    """The same settings as ONYXIA_* environment variables (for `make run`)."""
    return {
        "ONYXIA_REGION__DOMAIN": LOCAL_DOMAIN,
        "ONYXIA_REGION__SERVICE_URL_TEMPLATE": url_template(cluster),
        "ONYXIA_CATALOGS__IMAGE_OVERRIDES": json.dumps(chart_images, sort_keys=True),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`env`: import the images into a running cluster's real nodes, print the exports."""
    parser = argparse.ArgumentParser(prog="python -m devtools.localplatform")
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env", help="prepare the images; print the settings as exports")
    env.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.state_dir)
    if not cluster.real_nodes:
        print("# no real node: services are simulated, nothing to open", file=sys.stderr)
        return 0

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    chart_images = prepare_images(cluster, out=say)
    for key, value in environment(cluster, chart_images).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
