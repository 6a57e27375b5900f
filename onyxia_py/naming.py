"""Safe, collision-free Kubernetes names.

Usernames and group names come from identity providers and can hold anything: upper case, dots,
`@`, accents, 200 characters. Kubernetes names must be RFC 1123 labels (lowercase alphanumerics and
`-`, starting and ending alphanumeric, at most 63 characters). A name that is already safe is kept
as it is, so `alice` stays `user-alice` as in Onyxia; any other is slugified and suffixed with a
short hash of the original, so two different inputs never share a name (`Bob` and `bob` differ).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_LABEL = 63
# Helm release names are stored in Secret names with a suffix, hence Helm's own lower limit.
MAX_RELEASE_NAME = 53
_HASH_LEN = 8

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_UNSAFE_RUN = re.compile(r"[^a-z0-9]+")


class UnsafeName(ValueError):
    """A name cannot be made into a valid label (for example, it is empty)."""


def is_label(value: str, max_length: int = MAX_LABEL) -> bool:
    """True when `value` is a valid RFC 1123 label of at most `max_length` characters."""
    return 0 < len(value) <= max_length and _LABEL_RE.match(value) is not None


def short_hash(value: str, length: int = _HASH_LEN) -> str:
    """A stable lowercase hex digest of `value`, `length` characters long."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def slugify(value: str) -> str:
    """Lowercase ASCII letters, digits and single dashes; accents folded, the rest dropped."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE_RUN.sub("-", folded.lower()).strip("-")


def safe_label(value: str, max_length: int = MAX_LABEL) -> str:
    """`value` itself if it is a valid label, else a slug of it plus a hash of the original."""
    if not value:
        raise UnsafeName("an empty name cannot become a Kubernetes name")
    if is_label(value, max_length):
        return value
    suffix = short_hash(value)
    room = max_length - len(suffix) - 1
    stem = slugify(value)[:room].rstrip("-")
    return f"{stem}-{suffix}" if stem else f"x-{suffix}"


def prefixed_label(prefix: str, value: str, max_length: int = MAX_LABEL) -> str:
    """`prefix` + a safe form of `value`, the whole a valid label (e.g. a project namespace)."""
    if not is_label(prefix.rstrip("-") or "x") or len(prefix) >= max_length - _HASH_LEN - 2:
        raise UnsafeName(f"prefix {prefix!r} cannot start a Kubernetes name")
    return prefix + safe_label(value, max_length - len(prefix))
