"""The local platform's S3 server (Ceph RGW with STS) and, with `--auth oidc`, its OpenID
Provider, for `make run`: started once per state dir, reused by the next `make run`, stopped with
the dev cluster.

    python -m devtools.localstack env --state-dir DIR [--auth none|oidc] [--public-url URL]
        # starts (or reuses) them; prints `export ONYXIA_...=...` lines on stdout
    python -m devtools.localstack stop --state-dir DIR

`env` starts `serve` in its own session: that process owns the gateway and the provider, writes
`DIR/localstack/state.json` (mode 0600: keys and secrets live only there and in the printed
exports, never in a command line), and stops them when the dev cluster's processes are gone or
on SIGTERM. What the platform gets:
- auth none: S3 in assume-role mode, a platform user `onyxia-platform` (may read roles) and a
  role `onyxia-platform` that trusts only that user's own key (not temporary credentials), allows
  every bucket and sessions up to 12 h (the default s3.duration_seconds);
- auth oidc: the provider with alice and bob (devtools/localoidc.py), registered in the gateway;
  S3 in web-identity mode with one provisioned role per user.
The gateway also listens on the real node's pod gateway address, so pods reach the same endpoint.
Its data lives in `DIR/localstack/rgw`: a `make dev-cluster-stop KEEP=1` (the cluster's
`kept.json` is there when the server stops) keeps it, with the provider's port, keys and client
secret (`DIR/localstack/oidc.json`), and the next `env` resumes on them; any other stop drops them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from botocore.exceptions import ClientError

from devtools.localcluster import LocalCluster
from devtools.localcluster.keep import KEPT_FLAG, STACK_DATA, read_kept
from devtools.localcluster.procs import is_alive, read_pids
from devtools.localoidc import Jwk, LocalOidcProvider, OidcClient, x5c_sha1_thumbprint
from devtools.localrgw import LocalRgw, RgwError, compact, ensure_installed

PLATFORM_UID = "onyxia-platform"
# Long enough for the platform's default s3.duration_seconds (12 h), the IAM maximum.
ROLE_MAX_SESSION_SECONDS = 43200
OIDC_SCOPES = ["openid", "profile", "email", "groups", "roles"]
START_TIMEOUT = 180.0


class StackError(RuntimeError):
    """The local S3 server or provider could not be started (the message says why)."""


# -- pure parts: what the platform is told -----------------------------------------------------


def platform_trust(uid: str) -> dict[str, Any]:
    """Trust only the platform user's own key: temporary credentials may not assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam:::user/{uid}"]},
                "Action": ["sts:AssumeRole"],
                "Condition": {"Null": {"aws:TokenIssueTime": "true"}},
            }
        ],
    }


ALL_BUCKETS: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}],
}


def s3_environment(
    endpoint: str, key: tuple[str, str], *, role_arn: str, oidc_provider_arn: str | None = None
) -> dict[str, str]:
    """S3 settings as ONYXIA_S3__* variables: assume-role, or web identity with provisioned
    per-user roles when an OpenID Connect provider is registered."""
    env = {
        "ONYXIA_S3__ENABLED": "true",
        "ONYXIA_S3__ENDPOINT_URL": endpoint,
        "ONYXIA_S3__REGION": "us-east-1",
        "ONYXIA_S3__PATH_STYLE": "true",
        "ONYXIA_S3__ACCESS_KEY_ID": key[0],
        "ONYXIA_S3__SECRET_ACCESS_KEY": key[1],
        "ONYXIA_S3__ROLE_ARN": role_arn,
    }
    if oidc_provider_arn is None:
        env["ONYXIA_S3__CREDENTIALS_MODE"] = "assume-role"
    else:
        env["ONYXIA_S3__CREDENTIALS_MODE"] = "web-identity"
        env["ONYXIA_S3__PROVISION_ROLES"] = "true"
        env["ONYXIA_S3__OIDC_PROVIDER_ARN"] = oidc_provider_arn
    return env


def auth_environment(
    issuer: str, client_id: str, client_secret: str, session_secret: str
) -> dict[str, str]:
    """Auth settings as ONYXIA_AUTH__* variables for the local provider."""
    return {
        "ONYXIA_AUTH__MODE": "oidc",
        "ONYXIA_AUTH__ISSUER_URL": issuer,
        "ONYXIA_AUTH__CLIENT_ID": client_id,
        "ONYXIA_AUTH__CLIENT_SECRET": client_secret,
        "ONYXIA_AUTH__AUDIENCE": client_id,
        "ONYXIA_AUTH__SCOPES": json.dumps(OIDC_SCOPES),
        "ONYXIA_SERVER__SESSION_SECRET": session_secret,
    }


def export_lines(env: Mapping[str, str]) -> list[str]:
    """`export KEY=value` lines, shell-quoted, in a stable order."""
    return [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]


def session_secret(path: Path) -> str:
    """The session secret kept in `path` (mode 0600), made (48 characters) the first time."""
    with contextlib.suppress(FileNotFoundError):
        kept = path.read_text().strip()
        if len(kept) >= 32:
            return kept
    value = secrets.token_urlsafe(36)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def write_private(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON readable only by us, atomically."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out)
    tmp.replace(path)


# -- the long-lived server ---------------------------------------------------------------------


class Paths:
    """Where one state dir keeps the stack's files."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.root = state_dir / "localstack"
        self.state = self.root / "state.json"
        self.log = self.root / "localstack.log"
        self.session_secret = self.root / "session-secret"
        self.rgw = state_dir / STACK_DATA
        self.oidc = self.root / "oidc.json"  # the provider's port, keys and client secret


def role_arn(iam: Any, name: str) -> str | None:
    """The role's ARN, or None when there is no such role."""
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError as exc:
        # By status: RGW's error body does not always carry the NoSuchEntity code.
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise


def setup_platform_s3(rgw: LocalRgw, endpoint: str, name: str = PLATFORM_UID) -> dict[str, str]:
    """Make the platform user `name` (may read roles) and its role `name` on `rgw`; the
    assume-role settings as ONYXIA_S3__* variables."""
    key = rgw.user_key(name) or rgw.create_user(name)  # kept data has it already
    # Reading roles lets the platform check s3.duration_seconds against the role at start.
    rgw._run(  # radosgw-admin on the gateway's own config
        "radosgw-admin",
        "-c",
        str(rgw.conf),
        "caps",
        "add",
        f"--uid={name}",
        "--caps=roles=read",
    )
    iam = rgw.client("iam")
    arn = (
        role_arn(iam, name)
        or iam.create_role(  # kept data has the role already
            RoleName=name,
            AssumeRolePolicyDocument=compact(platform_trust(name)),
            MaxSessionDuration=ROLE_MAX_SESSION_SECONDS,
        )["Role"]["Arn"]
    )
    iam.put_role_policy(RoleName=name, PolicyName="onyxia", PolicyDocument=compact(ALL_BUCKETS))
    return s3_environment(endpoint, key, role_arn=str(arn))


def kept_provider(path: Path, resuming: bool) -> tuple[int | None, list[Jwk] | None, str | None]:
    """The provider's kept port, keys and client secret when the gateway resumes on kept data
    (its registered issuer and per-user roles name that port and trust those keys)."""
    if not resuming:
        path.unlink(missing_ok=True)
        return None, None, None
    try:
        kept = json.loads(path.read_text())
        return int(kept["port"]), list(kept["keys"]), str(kept["client_secret"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None, None


def register_provider(
    rgw: LocalRgw, issuer: str, client_ids: list[str], thumbprints: list[str]
) -> str:
    """Trust the issuer in the gateway. On kept data it is registered already: RGW (Ceph 16)
    has no ListOpenIDConnectProviders, so a refused creation there means it exists, under
    the ARN RGW gives every provider (`arn:aws:iam:::oidc-provider/<issuer without scheme>`)."""
    try:
        return rgw.register_oidc_provider(issuer, client_ids, thumbprints)
    except ClientError as exc:
        if not rgw.resuming:
            raise
        log_line = (exc.response.get("Error") or {}).get("Code") or "refused"
        print(f"localstack: provider {issuer} kept from before ({log_line})", flush=True)
        return f"arn:aws:iam:::oidc-provider/{issuer.split('://', 1)[-1]}"


def serve(state_dir: Path, auth: str, public_url: str) -> int:
    """Start the gateway (and provider), write the state file, run until the cluster stops."""
    paths = Paths(state_dir)
    cluster = LocalCluster(state_dir)
    extra = (cluster.pod_gateway,) if cluster.real_nodes else ()
    had_cluster = bool(read_pids(cluster.pids_file))
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    with contextlib.ExitStack() as stack:
        rgw = LocalRgw(extra_addresses=extra, root=paths.rgw).start()
        # Kept when the cluster's stop kept its own state (it records that before stopping).
        stack.callback(lambda: rgw.stop(keep=read_kept(state_dir) is not None))
        if rgw.resuming:
            print(f"localstack: resuming on the kept S3 data in {paths.rgw}", flush=True)
        endpoint = rgw.endpoint_on(extra[0]) if extra else rgw.endpoint
        env: dict[str, str]
        state: dict[str, Any] = {"pid": os.getpid(), "auth": auth, "endpoint": endpoint}
        if auth == "oidc":
            port, keys, secret = kept_provider(paths.oidc, rgw.resuming)
            client = OidcClient(
                client_id="onyxia",
                redirect_uris=[f"{public_url}/auth/callback"],
                post_logout_redirect_uris=[f"{public_url}/"],
            )
            if secret:
                client.client_secret = secret
            provider = stack.enter_context(
                LocalOidcProvider(
                    [client], port=port, keys=keys, access_token_ttl=900, session_ttl=43200
                )
            )
            write_private(
                paths.oidc,
                {
                    "port": provider.port,
                    "keys": provider.keys,
                    "client_secret": client.client_secret,
                },
            )
            thumbprints = [x5c_sha1_thumbprint(k) for k in provider.keys]
            provider_arn = register_provider(rgw, provider.issuer, [client.client_id], thumbprints)
            env = s3_environment(
                endpoint,
                rgw.admin_key,
                role_arn="arn:aws:iam:::role/onyxia-{username}",
                oidc_provider_arn=provider_arn,
            )
            env |= auth_environment(
                provider.issuer,
                client.client_id,
                client.client_secret,
                session_secret(paths.session_secret),
            )
            state["issuer"] = provider.issuer
            state["users"] = [[u.username, u.password, u.roles] for u in provider.users]
        else:
            env = setup_platform_s3(rgw, endpoint)
        state["env"] = env
        write_private(paths.state, state)
        print(f"localstack: S3 on {endpoint} (auth {auth}); state in {paths.state}", flush=True)
        try:
            while not stopping and cluster_alive(cluster, had_cluster):
                time.sleep(2.0)
        finally:
            paths.state.unlink(missing_ok=True)
    print("localstack: stopped", flush=True)
    return 0


def cluster_alive(cluster: LocalCluster, had_cluster: bool) -> bool:
    """Whether to keep serving: without a cluster at start, always; with one, while its
    recorded processes run (`make dev-cluster-stop` removes or ends them)."""
    if not had_cluster:
        return True
    records = read_pids(cluster.pids_file)
    return bool(records) and all(map(is_alive, records))


# -- the client side: start or reuse ------------------------------------------------------------


def read_state(paths: Paths) -> dict[str, Any] | None:
    """The running stack's state, or None when it is missing, stale or not answering."""
    try:
        state: dict[str, Any] = json.loads(paths.state.read_text())
        pid = int(state["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    if b"devtools.localstack" not in cmdline:
        return None
    try:
        httpx.get(str(state["endpoint"]) + "/", timeout=2.0)
    except httpx.HTTPError:
        return None
    return state


def stop(paths: Paths, timeout: float = 30.0) -> bool:
    """SIGTERM the stack's server (by the pid in its state file) and wait; whether one ran."""
    try:
        pid = int(json.loads(paths.state.read_text())["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return False
    if b"devtools.localstack" not in cmdline:
        return False
    os.kill(pid, signal.SIGTERM)
    # Waiting matters: a kept stop's data is saved only once the server is done.
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return True


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not reaped by its parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def start(paths: Paths, auth: str, public_url: str) -> dict[str, Any]:
    """Reuse the running stack when it has the same auth mode, else (re)start it."""
    state = read_state(paths)
    if state is not None and state.get("auth") == auth:
        print(f"[run] reusing the local S3 server on {state['endpoint']}", file=sys.stderr)
        return state
    if state is not None:
        stop(paths)
    try:
        ensure_installed()  # in the foreground: its progress shows
    except RgwError as exc:
        raise StackError(str(exc)) from exc
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.state.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "devtools.localstack",
        "serve",
        "--state-dir",
        str(paths.state_dir),
        "--auth",
        auth,
        "--public-url",
        public_url,
    ]
    with paths.log.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    print("[run] starting the local S3 server (Ceph RGW with STS)", file=sys.stderr, flush=True)
    deadline = time.monotonic() + START_TIMEOUT
    while (state := read_state(paths)) is None:
        if proc.poll() is not None:
            tail = "\n".join(paths.log.read_text(errors="replace").splitlines()[-15:])
            raise StackError(f"the local S3 server exited ({proc.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            os.kill(proc.pid, signal.SIGTERM)
            raise StackError(f"the local S3 server did not start in {START_TIMEOUT:.0f} s")
        time.sleep(0.3)
    return state


def login_help(state: Mapping[str, Any], public_url: str) -> list[str]:
    """How to log in with the local provider's demo users."""
    lines = [f"[run] log in at {public_url} (provider {state['issuer']}) as:"]
    for username, password, roles in state.get("users", []):
        admin = " (admin)" if "admin" in roles else ""
        lines.append(f"[run]   {username} / {password}{admin}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """`env` (start or reuse, print exports), `serve` (the long-lived server), `stop`."""
    parser = argparse.ArgumentParser(prog="python -m devtools.localstack")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("env", "serve", "stop"):
        command = sub.add_parser(name)
        command.add_argument("--state-dir", type=Path, required=True)
        if name != "stop":
            command.add_argument("--auth", choices=("none", "oidc"), default="none")
            command.add_argument("--public-url", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    paths = Paths(args.state_dir)
    if args.command == "serve":
        return serve(args.state_dir, args.auth, args.public_url.rstrip("/"))
    if args.command == "stop":
        if not stop(paths):
            return 0  # not running: nothing to say
        kept = (paths.rgw / KEPT_FLAG).exists()
        print(f"local S3 server stopped{' (data kept)' if kept else ''}", file=sys.stderr)
        return 0
    public_url = args.public_url.rstrip("/")
    try:
        state = start(paths, args.auth, public_url)
    except StackError as exc:
        print(f"[run] no S3: {exc}", file=sys.stderr)
        return 3
    for line in export_lines(state["env"]):
        print(line)
    mode = state["env"]["ONYXIA_S3__CREDENTIALS_MODE"]
    print(f"[run] S3 on {state['endpoint']} ({mode})", file=sys.stderr)
    if args.auth == "oidc":
        print("\n".join(login_help(state, public_url)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
