"""What a build chroot borrows from the host: CA bundle, pip and npm settings, apt sources.

Package tools inside the chroot must reach the same registries as the host, through the same
CA (pitfall 5 in real-nodes.md: the chroot's own bundle lacks this network's CA). Only these
settings are carried over, into files under the build directory; nothing of the host's
environment leaks into the chroot, and none of it stays in an image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HostConfig", "apt_options", "apt_sources"]

DEFAULT_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout", "retries")
NPM_KEYS = ("registry", "strict-ssl")
_PIP_LINE = re.compile(r"^(?P<scope>[^.]*)\.(?P<key>[a-z-]+)='(?P<value>.*)'$")


def _pip_config() -> dict[str, str]:
    """The host pip's effective settings (`pip config list`), later scopes winning."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    values: dict[str, str] = {}
    for line in out.splitlines():
        match = _PIP_LINE.match(line.strip())
        if match:
            values[match["key"]] = match["value"]
    return values


def _npm_config() -> dict[str, str]:
    npm = shutil.which("npm")
    if npm is None:
        return {}
    values = {}
    for key in NPM_KEYS:
        try:
            value = subprocess.run(
                [npm, "config", "get", key], capture_output=True, text=True, check=True, timeout=60
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if value and value not in ("undefined", "null"):
            values[key] = value
    return values


def _ca_bundle(pip: dict[str, str]) -> Path | None:
    names = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
    candidates = [os.environ.get(n, "") for n in names] + [pip.get("cert", ""), str(DEFAULT_CA)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class HostConfig:
    """The host's CA bundle, pip and npm settings, to be written into a build directory."""

    ca_bundle: Path | None
    pip: dict[str, str]
    npm: dict[str, str]

    @classmethod
    def discover(cls) -> HostConfig:
        """Read the host's settings (pip config, npm config, CA environment variables)."""
        pip = _pip_config()
        return cls(_ca_bundle(pip), {k: v for k, v in pip.items() if k in PIP_KEYS}, _npm_config())

    def write(self, build: Path, chroot_build: str) -> dict[str, str]:
        """Write ca.crt, pip.conf and npmrc into build; return the chroot's environment for them."""
        env: dict[str, str] = {}
        npmrc = [f"{k}={v}" for k, v in sorted(self.npm.items())]
        npmrc += ["fund=false", "audit=false", "update-notifier=false"]
        if self.ca_bundle is not None:
            shutil.copyfile(self.ca_bundle, build / "ca.crt")
            ca = f"{chroot_build}/ca.crt"
            npmrc.append(f"cafile={ca}")
            for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
                env[name] = ca
        pip_lines = ["[global]", *(f"{k} = {v}" for k, v in sorted(self.pip.items()))]
        (build / "pip.conf").write_text("\n".join(pip_lines) + "\n")
        (build / "npmrc").write_text("\n".join(npmrc) + "\n")
        env["PIP_CONFIG_FILE"] = f"{chroot_build}/pip.conf"
        env["NPM_CONFIG_USERCONFIG"] = f"{chroot_build}/npmrc"
        return env


def _deb822_paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _wanted(paragraph: str, suite: str) -> bool:
    fields = {}
    for line in paragraph.splitlines():
        if ":" in line and not line.startswith((" ", "\t", "#")):
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
    suites = fields.get("suites", "").split()
    enabled = fields.get("enabled", "yes").lower() != "no"
    return (
        enabled
        and "deb" in fields.get("types", "").split()
        and any(s == suite or s.startswith(f"{suite}-") for s in suites)
    )


def apt_sources(suite: str) -> str:
    """The host's apt sources for a Debian suite (deb822), to seed the images' apt."""
    override = os.environ.get("ONYXIA_IMAGES_APT_SOURCES")
    if override:
        return Path(override).read_text()
    etc = Path("/etc/apt")
    paragraphs: list[str] = []
    for path in sorted(etc.glob("sources.list.d/*.sources")):
        paragraphs += [p.strip() for p in _deb822_paragraphs(path.read_text()) if _wanted(p, suite)]
    for path in [etc / "sources.list", *sorted(etc.glob("sources.list.d/*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] == ["deb"] and any(w == suite or w.startswith(f"{suite}-") for w in words):
                paragraphs.append(_one_line_to_deb822(words))
    if not paragraphs:
        raise RuntimeError(
            f"no apt sources for {suite} on this host; set ONYXIA_IMAGES_APT_SOURCES"
        )
    return "\n\n".join(paragraphs) + "\n"


def _one_line_to_deb822(words: list[str]) -> str:
    rest = words[1:]
    options = []
    if rest and rest[0].startswith("["):
        while rest and not rest[0].endswith("]"):
            options.append(rest.pop(0))
        options.append(rest.pop(0))
    uri, suite, components = rest[0], rest[1], rest[2:]
    lines = [
        "Types: deb",
        f"URIs: {uri}",
        f"Suites: {suite}",
        f"Components: {' '.join(components)}",
    ]
    for option in " ".join(options).strip("[] ").split():
        key, _, value = option.partition("=")
        lines.append(f"{key.capitalize()}: {value}")
    return "\n".join(lines)


def apt_options() -> list[str]:
    """The host's apt options an image build must share (release-file date checks)."""
    keys = ("Acquire::Check-Valid-Until", "Acquire::Check-Date")
    try:
        out = subprocess.run(
            ["apt-config", "dump", *keys], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    options = []
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key in keys and value.strip('";').lower() in ("false", "0", "no"):
            options.append(f'{key} "false";')
    return options
