"""Storage rules: names, policies, public-prefix statements, key checks, refresh timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onyxia_py.errors import Invalid
from onyxia_py.projects.models import Project
from onyxia_py.settings import ProjectSettings, S3Settings
from onyxia_py.storage import core
from onyxia_py.storage.models import StorageUser

S3 = S3Settings()
PROJECTS = ProjectSettings()
ALICE = StorageUser(1, "alice", "sub-alice", ("stats", "Data Science/ML", "BAD NAME!"))


def test_personal_and_group_buckets_follow_the_onyxia_names() -> None:
    assert core.personal_bucket("alice", S3) == "user-alice"
    group = Project("projet-stats", "projet-stats", "stats", "stats")
    assert core.group_bucket(group, PROJECTS, S3) == "projet-stats"
    personal = Project("user-alice", "user-alice", "alice", None)
    assert core.project_bucket(personal, "alice", PROJECTS, S3) == "user-alice"


def test_unsafe_usernames_get_distinct_valid_bucket_names() -> None:
    first = core.personal_bucket("Bob.Smith@example.org", S3)
    second = core.personal_bucket("bob.smith@example.org", S3)
    assert first != second
    for name in (first, second, core.personal_bucket("é" * 80, S3)):
        assert len(name) <= 63
        assert name == name.lower()
        assert all(c.isalnum() or c == "-" for c in name)


def test_user_buckets_cover_the_personal_bucket_and_valid_groups() -> None:
    buckets = core.user_buckets(ALICE, PROJECTS, S3)
    assert buckets[0] == "user-alice"
    assert "projet-stats" in buckets
    assert all(len(b) <= 63 for b in buckets)
    # A group that makes no valid project name gets no bucket either.
    assert not any("bad" in b for b in buckets)


def test_a_services_scope_follows_from_its_namespace() -> None:
    # Personal project: all the user's buckets, as before.
    assert core.service_scope("user-alice", ALICE, PROJECTS, S3) is None
    # Group project: its bucket only, whichever of the user's groups it is.
    assert core.service_scope("projet-stats", ALICE, PROJECTS, S3) == ("projet-stats",)
    assert core.service_scope("projet-economics", ALICE, PROJECTS, S3) == ("projet-economics",)
    # Another user's personal project, or a namespace that is no project: nothing.
    assert core.service_scope("user-bob", ALICE, PROJECTS, S3) == ()
    assert core.service_scope("kube-system", ALICE, PROJECTS, S3) == ()
    buckets = core.user_buckets(ALICE, PROJECTS, S3)
    assert core.scoped(buckets, None) == buckets
    assert core.scoped(buckets, ("projet-stats",)) == ["projet-stats"]
    assert core.scoped(buckets, ("projet-economics",)) == []  # not a member
    assert core.scoped(buckets, ()) == []


def test_templates_and_session_names() -> None:
    assert core.render("arn:aws:iam:::role/onyxia-{username}", ALICE) == (
        "arn:aws:iam:::role/onyxia-alice"
    )
    odd = StorageUser(2, "Zoë <admin>", "s", ())
    name = core.session_name("onyxia-{username}", odd)
    assert 2 <= len(name) <= 64
    assert all(c.isalnum() or c in "+=,.@-_" for c in name)
    assert core.session_name("{username}", StorageUser(3, "x", "s", ())) == "onyxia-x"
    assert len(core.session_name("{username}" * 5, StorageUser(4, "y" * 60, "s", ()))) == 64
    assert core.role_name("arn:aws:iam::123:role/path/onyxia-alice") == "onyxia-alice"


def test_issuer_names_for_iam() -> None:
    assert core.issuer_host_path("https://sso.example.org/realms/lab/") == (
        "sso.example.org/realms/lab"
    )
    assert core.provider_arn(S3, "http://127.0.0.1:8080") == (
        "arn:aws:iam:::oidc-provider/127.0.0.1:8080"
    )
    named = S3Settings(oidc_provider_arn="arn:aws:iam::1:oidc-provider/x")
    assert core.provider_arn(named, "https://whatever") == "arn:aws:iam::1:oidc-provider/x"


def test_endpoint_parts() -> None:
    plain = core.endpoint(S3Settings(endpoint_url="http://127.0.0.1:7480/"))
    assert (plain.url, plain.host, plain.port, plain.secure) == (
        "http://127.0.0.1:7480",
        "127.0.0.1",
        7480,
        False,
    )
    assert plain.authority == "127.0.0.1:7480"
    tls = core.endpoint(S3Settings(endpoint_url="https://minio.example.org"))
    assert (tls.port, tls.authority) == (443, "minio.example.org")


def test_policies_confine_to_the_buckets_given() -> None:
    policy = core.buckets_policy(["user-alice", "projet-stats"])
    resources = policy["Statement"][0]["Resource"]
    assert resources == [
        "arn:aws:s3:::user-alice",
        "arn:aws:s3:::user-alice/*",
        "arn:aws:s3:::projet-stats",
        "arn:aws:s3:::projet-stats/*",
    ]
    trust = core.web_identity_trust(
        "arn:aws:iam:::oidc-provider/sso:8080", "http://sso:8080", "sub-1", "onyxia"
    )
    statement = trust["Statement"][0]
    assert statement["Principal"] == {"Federated": ["arn:aws:iam:::oidc-provider/sso:8080"]}
    assert statement["Condition"] == {
        "StringEquals": {"sso:8080:sub": "sub-1", "sso:8080:aud": "onyxia"}
    }


FOREIGN = {"Sid": "Theirs", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "x"}


def test_public_statements_are_added_and_removed_alone() -> None:
    base = {"Version": "2012-10-17", "Statement": [FOREIGN]}
    public = core.with_public(base, "b", "data/")
    assert public["Statement"][0] == FOREIGN
    assert len(public["Statement"]) == 2
    assert core.public_prefixes(public, "b") == ["data/"]
    assert base["Statement"] == [FOREIGN]  # the input is not changed
    assert core.with_public(public, "b", "data/") == public  # idempotent
    both = core.with_public(public, "b", "other/")
    assert core.public_prefixes(both, "b") == ["data/", "other/"]
    private = core.without_public(both, "data/")
    assert private is not None
    assert core.public_prefixes(private, "b") == ["other/"]
    assert FOREIGN in private["Statement"]
    assert core.without_public(core.with_public(None, "b", ""), "") is None
    assert core.public_prefixes(core.with_public(None, "b", ""), "b") == [""]
    # A single statement given as an object (not a list) is understood too.
    single = {"Version": "2012-10-17", "Statement": FOREIGN}
    assert core.with_public(single, "b", "p/")["Statement"][0] == FOREIGN


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "must not be empty"),
        ("a/../b", "must not contain '.' or '..' segments"),
        ("./a", "must not contain '.' or '..' segments"),
        ("a" * 1025, "must be at most 1024 bytes"),
        ("\x7f", "must not contain control characters"),
        ("a\rb", "must not contain control characters"),
        ("/a", "must not start with '/'"),
        ("a//b", "must not contain empty segments ('//')"),
        ("dir/", "must not end with '/' (that names a folder)"),
        ("\udcff", "must be valid UTF-8"),
    ],
)
def test_bad_keys_are_refused_with_a_reason(key: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        core.check_key(key)
    assert [(e.field, e.reason) for e in caught.value.errors] == [("key", reason)]


def test_good_keys_and_prefixes() -> None:
    assert core.check_key("data/2024/file..name.csv") == "data/2024/file..name.csv"
    assert core.check_key("a" * 1024) == "a" * 1024
    assert core.check_key("日本/データ.csv") == "日本/データ.csv"
    assert core.check_prefix("") == ""
    assert core.check_prefix("data") == "data/"
    assert core.check_prefix("data/sub/") == "data/sub/"
    with pytest.raises(Invalid):
        core.check_prefix("", allow_root=False)
    with pytest.raises(Invalid):
        core.check_prefix("data/../")


def test_refresh_timing() -> None:
    now = datetime.now(UTC)
    assert core.needs_refresh(None, now, 60)
    assert core.needs_refresh(now + timedelta(seconds=30), now, 60)
    assert not core.needs_refresh(now + timedelta(seconds=90), now, 60)
    assert core.needs_refresh(now - timedelta(seconds=1), now, 0)
    assert core.reusable(now + timedelta(seconds=400), now, 43200)
    assert not core.reusable(now + timedelta(seconds=200), now, 43200)
    assert not core.reusable(now + timedelta(seconds=200), now, 900)
    assert core.reusable(now + timedelta(seconds=230), now, 900)
