"""Sealing tokens at rest, and projects from usernames and groups."""

from __future__ import annotations

from onyxia_py.auth import Cipher, derive_key, random_token, token_hash
from onyxia_py.projects.core import projects_of
from onyxia_py.settings import ProjectSettings


def test_cipher_round_trip_and_context_binding() -> None:
    cipher = Cipher([derive_key("secret-one", "tokens")])
    sealed = cipher.encrypt("refresh-token-value", "provider-token")
    assert "refresh-token-value" not in sealed
    assert cipher.decrypt(sealed, "provider-token") == "refresh-token-value"
    assert cipher.decrypt(sealed, "login-state") is None


def test_cipher_refuses_tampering() -> None:
    cipher = Cipher([derive_key("secret-one", "tokens")])
    sealed = cipher.encrypt("value", "ctx")
    kid, body = sealed.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    assert cipher.decrypt(f"{kid}.{flipped}", "ctx") is None
    assert cipher.decrypt("garbage", "ctx") is None


def test_cipher_key_rotation() -> None:
    old = Cipher([derive_key("old", "t")])
    sealed_with_old = old.encrypt("value", "ctx")
    rotated = Cipher([derive_key("new", "t"), derive_key("old", "t")])
    assert rotated.decrypt(sealed_with_old, "ctx") == "value"
    assert rotated.encrypt("value", "ctx").startswith(rotated.current_key_id)
    assert Cipher([derive_key("new", "t")]).decrypt(sealed_with_old, "ctx") is None


def test_tokens_are_random_and_hashed() -> None:
    a, b = random_token("onyx_"), random_token("onyx_")
    assert a != b
    assert a.startswith("onyx_")
    assert len(token_hash(a)) == 64
    assert a not in token_hash(a)


def test_projects_of_a_user() -> None:
    settings = ProjectSettings()
    ids = [p.id for p in projects_of("alice", ("stats", "Data Science/ML", "stats"), settings)]
    assert ids == ["user-alice", "projet-stats"]


def test_group_rewrite() -> None:
    settings = ProjectSettings(group_name_pattern=r"[^A-Za-z0-9]+", group_name_replacement="-")
    projects = projects_of("Jean.Dupont", ("Data Science/ML",), settings)
    assert [p.id for p in projects][1] == "projet-data-science-ml"
    assert projects[0].id.startswith("user-jean-dupont-")
    assert projects[1].group == "Data Science/ML"
