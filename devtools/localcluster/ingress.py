"""The local ingress: Debian's nginx, configured from every Ingress object of the cluster.

Run: ``python -m devtools.localcluster.ingress --kubeconfig K --listen 127.0.0.1:PORT
--state-dir D``. Routes are those of ``nginxconf``: plain HTTP, any ingressClassName, WebSockets
and long requests passed through, 503 with a reason while a backend has no ready endpoint, 404
for unknown hosts.

Service URLs in local mode are ``http://<name>.lab.localhost:PORT/``: browsers (Chromium too)
resolve every ``*.localhost`` name to loopback themselves, without DNS or /etc/hosts, and nginx
picks the server by the Host header without its port, so the Ingress host is just
``<name>.lab.localhost``.

nginx is a child started as ``nginx -p D -c D/nginx.conf -e D/logs/error.log
-g 'daemon off; pid D/nginx.pid;'``, with logs and temp files under D and its workers running
as the controller's own user. A changed configuration is checked with ``nginx -t`` first and
loaded with SIGHUP; a configuration nginx rejects is logged and the last good one stays.
"""

from __future__ import annotations

import argparse
import grp
import logging
import os
import pwd
import subprocess
import sys
import threading
from pathlib import Path

from . import apiwatch
from .apiwatch import Reflector
from .kubeconfig import load_client_config
from .nginxconf import TEMP_KINDS, NginxSettings, Route, nginx_config, render

log = logging.getLogger("ingress")


class Nginx(apiwatch.ChildDaemon):
    """The nginx child, its configuration kept equal to what the reflectors hold."""

    name = "nginx"

    def __init__(
        self,
        settings: NginxSettings,
        binary: str,
        ingresses: Reflector,
        services: Reflector,
        slices: Reflector,
    ) -> None:
        super().__init__(settings.state_dir / "nginx.pid")
        self.settings = settings
        self.binary = binary
        self.sources = (ingresses, services, slices)
        self.applied = ""
        self.rejected = ""
        self.served: set[str] = set()

    @property
    def conf(self) -> Path:
        """The configuration nginx runs with."""
        return self.settings.state_dir / "nginx.conf"

    def argv(self, conf: Path) -> list[str]:
        """Return nginx's command line for a configuration file."""
        d = self.settings.state_dir
        return [
            self.binary,
            "-p",
            str(d),
            "-c",
            str(conf),
            "-e",
            str(d / "logs" / "error.log"),
            "-g",
            f'daemon off; pid "{self.pid_file}";',
        ]

    def sync(self) -> None:
        """Write and load the configuration if it changed and `nginx -t` accepts it."""
        ingresses, services, slices = (r.items() for r in self.sources)
        text, routes, warnings = nginx_config(ingresses, services, slices, self.settings)
        if text in (self.applied, self.rejected):
            return
        if not self._accepts(text):
            self.rejected = text
            if self.applied:
                return
            # nginx must run from the start: until a configuration passes, it serves nothing.
            text, routes = render([], self.settings), []
        tmp = self.conf.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.conf)
        self.applied = text
        for w in warnings:
            log.warning("%s", w)
        self.reload()
        self._log_change(routes)

    def _accepts(self, text: str) -> bool:
        candidate = self.settings.state_dir / "nginx.conf.new"
        candidate.write_text(text)
        r = subprocess.run(
            [*self.argv(candidate), "-t", "-q"], capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            why = " ".join((r.stderr or r.stdout).split())
            log.error("nginx -t rejected the new configuration, keeping the last good one: %s", why)
            return False
        candidate.unlink(missing_ok=True)
        return True

    def _log_change(self, routes: list[Route]) -> None:
        now = {r.describe() for r in routes}
        log.info(
            "serving %d routes on %s (nginx pid %s)",
            len(now),
            ", ".join(self.settings.listen),
            self.proc.pid if self.proc else "-",
        )
        for line in sorted(self.served - now):
            log.info("- %s", line)
        for line in sorted(now - self.served):
            log.info("+ %s", line)
        self.served = now

    def command(self) -> list[str]:
        """nginx in the foreground with the applied configuration."""
        return self.argv(self.conf)


def parse_args(argv: list[str] | None = None) -> tuple[Path, NginxSettings, str]:
    """Parse the command line into a kubeconfig path, nginx settings and the nginx binary."""
    p = argparse.ArgumentParser(
        prog="python -m devtools.localcluster.ingress",
        description="Local ingress (nginx) fed from the Ingress objects of a local cluster.",
    )
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument(
        "--listen", action="append", required=True, help="ADDR:PORT to serve on (repeatable)"
    )
    p.add_argument("--state-dir", type=Path, required=True, help="config, logs, temp files, pid")
    p.add_argument("--nginx", default="nginx", help="the nginx binary")
    a = p.parse_args(argv)
    settings = NginxSettings(
        listen=tuple(a.listen),
        state_dir=a.state_dir.absolute(),
        user=pwd.getpwuid(os.getuid()).pw_name,
        group=grp.getgrgid(os.getgid()).gr_name,
    )
    return a.kubeconfig, settings, a.nginx


def main(argv: list[str] | None = None) -> int:
    """Serve the cluster's Ingresses until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kubeconfig, settings, name = parse_args(argv)
    binary = apiwatch.find_binary(name)
    if binary is None:
        log.error("%s not found; install it with devtools/system-deps-net.sh", name)
        return 2
    for sub in ("logs", "tmp", *(f"tmp/{k}" for k in TEMP_KINDS)):
        (settings.state_dir / sub).mkdir(parents=True, exist_ok=True)
    cfg = load_client_config(kubeconfig)
    changed, stopping = threading.Event(), threading.Event()
    ingresses = Reflector(cfg, apiwatch.INGRESSES, changed, stopping)
    services = Reflector(cfg, apiwatch.SERVICES, changed, stopping)
    slices = Reflector(cfg, apiwatch.ENDPOINT_SLICES, changed, stopping)
    nginx = Nginx(settings, binary, ingresses, services, slices)
    apiwatch.run_controller([ingresses, services, slices], nginx, changed, stopping)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
