"""A real S3 server with IAM and STS for tests: Ceph's RADOS Gateway from Debian's packages.

`LocalRgw` starts a throw-away single-node Ceph cluster on 127.0.0.1 (one monitor, one OSD
keeping objects in memory, no manager, no cephx) and one radosgw with the S3, IAM and STS APIs,
then creates an admin user whose keys may manage roles, OpenID Connect providers and users.
Everything (config, data, logs, sockets) lives in a temp dir; `stop()` signals only the
processes it started and removes that dir. A start takes 2 to 4 seconds.
With `root=DIR` it lives in DIR instead, and `stop(keep=True)` keeps it: the OSD's memstore saves
its objects to disk on a clean shutdown, so the next `LocalRgw(root=DIR)` resumes on the same
users, roles, buckets and objects, with the same ports and STS key (issued credentials stay good).

What tests get: `endpoint` (http://127.0.0.1:PORT), `admin_key` (access key id, secret), and
`client("s3" | "iam" | "sts")`, boto3 clients signed with the admin key.
`register_oidc_provider` trusts an issuer for AssumeRoleWithWebIdentity (RGW wants the SHA-1
thumbprint of the issuer's signing certificate, from the JWKS `x5c`).

Facts that shaped it (see ../shared/docs/local-cluster.md): paxos intervals shortened (else each
pool RGW creates costs a second); the gateway needs `ms mon client mode = crc secure` with auth
none; IAM policy JSON must be compact; STS needs DurationSeconds >= 900; RGW fetches the issuer's
discovery document and JWKS on every STS call, so the issuer must stay up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import httpx
from botocore.config import Config

from devtools.localcluster.keep import KEPT_FLAG  # in root: a clean stop kept the data
from devtools.localcluster.procs import ProcessRecord, is_alive, spawn, terminate
from devtools.ports import free_ports

DEPS_SCRIPT = Path(__file__).resolve().parent / "system-deps-s3.sh"
BINARIES = ("ceph-mon", "ceph-osd", "ceph", "radosgw", "radosgw-admin", "monmaptool")
ADMIN_CAPS = "roles=*;oidc-provider=*;users=*;buckets=*;user-policy=*;metadata=*;usage=*"
REGION = "us-east-1"

# Runs beside the daemons: when the process that started them dies without stopping them
# (killed test run), it stops them and removes their data. Args: parent pid, root, pids.
_WATCHDOG = """
import os, shutil, signal, sys, time
parent, root, pids = int(sys.argv[1]), sys.argv[2], [int(p) for p in sys.argv[3:]]
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
for pid in reversed(pids):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if root.encode() in f.read():
                os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
time.sleep(3)
shutil.rmtree(root, ignore_errors=True)
"""


class RgwError(RuntimeError):
    """The gateway or one of its daemons could not be installed or started."""


def ensure_installed() -> None:
    """Install Debian's Ceph packages with devtools/system-deps-s3.sh when a binary is missing."""
    if all(shutil.which(b) for b in BINARIES):
        return
    print("localrgw: installing Ceph's packages (system-deps-s3.sh)", file=sys.stderr, flush=True)
    done = subprocess.run(["bash", str(DEPS_SCRIPT)], stdout=sys.stderr, check=False)
    missing = [b for b in BINARIES if not shutil.which(b)]
    if done.returncode != 0 or missing:
        raise RgwError(f"cannot install Ceph (exit {done.returncode}); missing: {missing}")


def compact(document: dict[str, Any]) -> str:
    """JSON without whitespace: RGW's IAM refuses policy documents that have any."""
    return json.dumps(document, separators=(",", ":"))


LAYOUT_FILE = "rgw.json"  # in root: fsid, ports and STS key, what a resume needs again


def _config(
    root: Path,
    mon_ports: tuple[int, int],
    rgw_port: int,
    fsid: str,
    extra: tuple[str, ...],
    sts_key: str,
    lasting: bool = False,
) -> str:
    v2, v1 = mon_ports
    # A fast shutdown skips the store's unmount, where memstore writes its objects to disk.
    fast_shutdown = "false" if lasting else "true"
    endpoints = " ".join(f"endpoint={a}:{rgw_port}" for a in ("127.0.0.1", *extra))
    return f"""[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.1/32
cluster network = 127.0.0.1/32
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
keyring = {root}/keyring
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
mon cluster log file = {root}/log/cluster.log
crash dir = {root}/crash
log to syslog = false
err to syslog = false
clog to syslog = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd crush chooseleaf type = 0

[mon]
mon data = {root}/mon/$id
# Every pool RGW creates waits for a paxos round: 1 s by default, 50 ms here.
paxos propose interval = 0.05
paxos min wait = 0.01

[osd]
osd data = {root}/osd/$id
osd objectstore = memstore
osd fast shutdown = {fast_shutdown}
memstore device bytes = 4294967296
osd crush update on start = true
osd crush location = root=default host=localhost

[client.rgw.a]
# radosgw's default (secure) mon connection mode cannot work with auth none.
ms mon client mode = crc secure
rgw data = {root}/rgw
rgw frontends = beast {endpoints}
rgw dns name = localhost
rgw enable apis = s3, admin, sts, iam
rgw sts key = {sts_key}
rgw s3 auth use sts = true
rgw enable usage log = false
debug rgw = 1
"""


class LocalRgw:
    """Start with `start()` (or `with`); `endpoint`, `admin_key`, `client()`; stop with `stop()`."""

    def __init__(
        self,
        *,
        start_timeout: float = 90.0,
        extra_addresses: tuple[str, ...] = (),
        root: Path | None = None,
    ) -> None:
        """`extra_addresses`: more local addresses the gateway listens on besides 127.0.0.1
        (the pod network's gateway, so that pods of real nodes reach S3). `root`: a lasting
        data dir, resumed when a `stop(keep=True)` left it, else emptied (default: a temp dir)."""
        self.lasting = root is not None
        self.root = Path(tempfile.mkdtemp(prefix="onyxia-rgw-")) if root is None else root
        self.conf = self.root / "ceph.conf"
        layout = self._kept_layout()
        self.resuming = layout is not None
        if layout is None:
            if self.lasting:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root.mkdir(parents=True)
            v2, v1, rgw = free_ports(3)
            layout = {
                "fsid": str(uuid.uuid4()),
                "mon_ports": [v2, v1],
                "port": rgw,
                "sts_key": secrets.token_hex(8),
            }
        self._layout = layout
        v2, v1 = (int(p) for p in layout["mon_ports"])
        rgw = int(layout["port"])
        self._mon_ports = (v2, v1)
        self.port = rgw
        self.endpoint = f"http://127.0.0.1:{rgw}"
        self.extra_addresses = extra_addresses
        self.admin_key = ("", "")
        self.start_timeout = start_timeout
        self._records: list[ProcessRecord] = []
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._started = False

    def _kept_layout(self) -> dict[str, Any] | None:
        """What the kept data was started with, when a kept stop left some in root."""
        if not self.lasting or not (self.root / KEPT_FLAG).exists():
            return None
        try:
            layout: dict[str, Any] = json.loads((self.root / LAYOUT_FILE).read_text())
            int(layout["port"]), [int(p) for p in layout["mon_ports"]], str(layout["fsid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return layout

    def endpoint_on(self, address: str) -> str:
        """The S3 endpoint on one of the addresses it listens on."""
        if address != "127.0.0.1" and address not in self.extra_addresses:
            raise ValueError(f"the gateway does not listen on {address}")
        return f"http://{address}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalRgw:
        """Install if needed, bootstrap the cluster, start the gateway, create the admin user."""
        if self._started:
            return self
        ensure_installed()
        started = time.monotonic()
        try:
            if self.resuming:
                self._resume()
            else:
                self._bootstrap()
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.root)]
                + [str(r.pid) for r in self._records],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._started = True
        except BaseException:
            self._kill()
            raise
        (self.root / KEPT_FLAG).unlink(missing_ok=True)
        how = "resumed on the kept data" if self.resuming else "started"
        print(
            f"localrgw: S3 on {self.endpoint} {how} in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
            flush=True,
        )
        return self

    def _write_conf(self) -> str:
        fsid = str(self._layout["fsid"])
        sts_key = str(self._layout["sts_key"])
        conf = _config(
            self.root, self._mon_ports, self.port, fsid, self.extra_addresses, sts_key, self.lasting
        )
        self.conf.write_text(conf)
        return fsid

    def _resume(self) -> None:
        """Start the daemons on the kept data: no mkfs, the monitor's and OSD's stores as left."""
        taken = [p for p in (*self._mon_ports, self.port) if not _port_free(p)]
        if taken:
            raise RgwError(
                f"the kept S3 data needs ports {taken}, now taken; free them, or drop the data"
            )
        (self.root / "log").mkdir(exist_ok=True)
        self._write_conf()
        self._spawn("mon.a", "ceph-mon", "-f", "-c", str(self.conf), "-i", "a")
        self._spawn("osd.0", "ceph-osd", "-f", "-c", str(self.conf), "-i", "0")
        self._wait("the OSD to come up", self._osd_up)
        self._spawn("rgw.a", "radosgw", "-f", "-c", str(self.conf), "-n", "client.rgw.a")
        self._wait("radosgw to answer", self._rgw_answers)
        key = self.user_key("admin")
        if key is None:
            raise RgwError("the kept S3 data has no admin user")
        self.admin_key = key

    def _bootstrap(self) -> None:
        root = self.root
        for sub in ("mon/a", "osd/0", "rgw", "run", "log", "crash"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        fsid = self._write_conf()
        (root / LAYOUT_FILE).write_text(json.dumps(self._layout))
        v2, v1 = self._mon_ports
        self._run("ceph-authtool", "--create-keyring", str(root / "keyring"), "--gen-key")
        self._run("ceph-authtool", str(root / "keyring"), "--gen-key", "-n", "mon.")
        self._run(
            "monmaptool",
            "--create",
            "--enable-all-features",
            "--fsid",
            fsid,
            "--addv",
            "a",
            f"[v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]",
            str(root / "monmap"),
        )
        self._run(
            "ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a", "--monmap", str(root / "monmap")
        )
        self._spawn("mon.a", "ceph-mon", "-f", "-c", str(self.conf), "-i", "a")
        osd_uuid = str(uuid.uuid4())
        # `osd new` is the first command that needs a quorum: it waits for the monitor.
        osd_id = self._ceph("osd", "new", osd_uuid).strip()
        if osd_id != "0":
            raise RgwError(f"unexpected OSD id {osd_id!r}")
        self._run("ceph-osd", "-c", str(self.conf), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        self._spawn("osd.0", "ceph-osd", "-f", "-c", str(self.conf), "-i", "0")
        self._wait("the OSD to come up", self._osd_up)
        self._spawn("rgw.a", "radosgw", "-f", "-c", str(self.conf), "-n", "client.rgw.a")
        self._wait("radosgw to answer", self._rgw_answers)
        self.admin_key = self._new_user("admin")
        self._run(
            "radosgw-admin",
            "-c",
            str(self.conf),
            "caps",
            "add",
            "--uid=admin",
            f"--caps={ADMIN_CAPS}",
        )

    def _new_user(self, uid: str) -> tuple[str, str]:
        # radosgw-admin generates the keys: no secret ever travels in a command line.
        answer = json.loads(
            self._run(
                "radosgw-admin",
                "-c",
                str(self.conf),
                "user",
                "create",
                f"--uid={uid}",
                f"--display-name={uid}",
            )
        )
        key = answer["keys"][0]
        return str(key["access_key"]), str(key["secret_key"])

    def user_key(self, uid: str) -> tuple[str, str] | None:
        """The key pair of an existing user, or None when there is no such user."""
        conf = ("radosgw-admin", "-c", str(self.conf))
        done = subprocess.run(
            [*conf, "user", "info", f"--uid={uid}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            return None
        key = json.loads(done.stdout)["keys"][0]
        return str(key["access_key"]), str(key["secret_key"])

    def _run(self, *argv: str, timeout: float = 60.0) -> str:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RgwError(f"{argv[0]} {argv[1]} failed ({done.returncode}): {done.stderr[-800:]}")
        return done.stdout

    def _ceph(self, *args: str) -> str:
        return self._run(
            "ceph", "-c", str(self.conf), "--connect-timeout", "30", *args, timeout=60.0
        )

    def _spawn(self, name: str, *argv: str) -> None:
        record, _ = spawn(name, argv, self.root / "log", match=str(self.conf))
        self._records.append(record)

    def _osd_up(self) -> bool:
        status = json.loads(self._ceph("osd", "stat", "-f", "json"))
        return int(status.get("num_up_osds", 0)) == 1 and int(status.get("num_in_osds", 0)) == 1

    def _rgw_answers(self) -> bool:
        try:
            return httpx.get(self.endpoint + "/", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def _wait(self, what: str, ready: Any) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not ready():
            dead = [r.name for r in self._records if not is_alive(r)]
            if dead:
                raise RgwError(
                    f"{', '.join(dead)} died while waiting for {what}: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RgwError(f"timed out waiting for {what}: {self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the gateway's log (for failure messages)."""
        log = self.root / "log" / "client.rgw.a.log"
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_running(self) -> None:
        """Raise if one of the daemons has exited."""
        dead = [r.name for r in self._records if not is_alive(r)]
        if dead:
            raise RgwError(f"{', '.join(dead)} exited: {self.log_tail()}")

    def _kill(self) -> list[str]:
        # Gateway first, then the OSD, then the monitor: each stops cleanly without the next.
        # The OSD's memstore writes its objects out on SIGTERM: give it time.
        killed: list[str] = []
        for record in reversed(self._records):
            killed += terminate([record], timeout=30.0 if record.name == "osd.0" else 5.0)
        self._records.clear()
        return killed

    def stop(self, *, keep: bool = False) -> None:
        """Stop the daemons this object started and delete their data; with keep (and a
        lasting root) leave the data for the next `LocalRgw(root=...)` to resume on."""
        if self._watchdog is not None:
            self._watchdog.terminate()
            self._watchdog.wait(timeout=5)
            self._watchdog = None
        killed = self._kill()
        self._started = False
        if keep and self.lasting and "osd.0" not in killed:
            (self.root / KEPT_FLAG).touch()
            return
        if keep and self.lasting:
            print("localrgw: the OSD had to be killed: its data is lost", file=sys.stderr)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalRgw:
        """Start the gateway."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the gateway."""
        self.stop()

    # -- clients and IAM set-up --------------------------------------------------------------

    def client(self, service: str, key: tuple[str, str] | None = None) -> Any:
        """A boto3 client for `service` (s3, iam, sts), signed with `key` (default: admin)."""
        access, secret = key or self.admin_key
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def register_oidc_provider(
        self, issuer: str, client_ids: list[str], thumbprints: list[str]
    ) -> str:
        """Trust `issuer` for AssumeRoleWithWebIdentity; the provider's ARN."""
        answer = self.client("iam").create_open_id_connect_provider(
            Url=issuer, ClientIDList=client_ids, ThumbprintList=thumbprints
        )
        return str(answer["OpenIDConnectProviderArn"])

    def create_user(self, uid: str) -> tuple[str, str]:
        """A plain S3 user (no caps) and its key pair."""
        return self._new_user(uid)

    def create_role(self, name: str, trust: dict[str, Any], policy: dict[str, Any]) -> str:
        """A role with a trust policy and one inline permission policy; its ARN."""
        iam = self.client("iam")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=compact(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="onyxia", PolicyDocument=compact(policy))
        return str(arn)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the daemons bind: connections of the previous run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m devtools.localrgw`: run a gateway in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.parse_args(argv)
    with LocalRgw() as rgw:
        print(f"endpoint:      {rgw.endpoint}")
        print(f"admin key id:  {rgw.admin_key[0]}")
        print(f"admin secret:  (in {rgw.root}, radosgw-admin -c {rgw.conf} user info --uid=admin)")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
