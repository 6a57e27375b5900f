"""What `make dev-cluster-stop` says it drops or keeps, and when it asks first."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from devtools.localcluster import LocalCluster, keep
from devtools.localcluster.__main__ import confirm_drop
from devtools.localcluster.keep import (
    KEPT_FILE,
    KEPT_FLAG,
    STACK_DATA,
    Inventory,
    count,
    drop_stack_data,
    drop_warning,
    forget_kept,
    keep_notice,
    needs_confirmation,
    read_kept,
    resume_message,
    write_kept,
)
from onyxia_py.projects import objects as project_objects
from onyxia_py.services import objects as service_objects

NOON = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)


def secret(ns: str, name: str, kind: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"type": kind, "metadata": {"namespace": ns, "name": name, "labels": labels or {}}}


def namespace(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}}


def test_a_service_counts_once_whatever_its_revisions_and_records() -> None:
    secrets = [
        secret("user-alice", "sh.onyxia.release.v1.jupyter-1", "onyxia.sh/release.v1"),
        secret(
            "user-alice",
            "sh.helm.release.v1.jupyter-1.v1",
            "helm.sh/release.v1",
            {"name": "jupyter-1"},
        ),
        secret(
            "user-alice",
            "sh.helm.release.v1.jupyter-1.v2",
            "helm.sh/release.v1",
            {"name": "jupyter-1"},
        ),
        secret(
            "user-alice", "sh.helm.release.v1.vscode.v1", "helm.sh/release.v1", {"name": "vscode"}
        ),
        secret("project-stats", "sh.onyxia.release.v1.rstudio", "onyxia.sh/release.v1"),
    ]
    assert count(secrets, [namespace("user-alice"), namespace("user-bob")]) == Inventory(3, 3)


def test_a_namespace_holding_a_service_is_a_project_even_unlabelled() -> None:
    secrets = [secret("default", "x", "helm.sh/release.v1", {"name": "x"})]
    assert count(secrets, []) == Inventory(1, 1)


def test_a_helm_secret_without_its_name_label_is_not_a_service() -> None:
    assert count([secret("ns", "odd", "helm.sh/release.v1")], []) == Inventory(0, 0)


def test_the_warning_says_what_goes_and_how_to_keep_it() -> None:
    text = drop_warning(Inventory(3, 2), stack=True)
    assert text == (
        "dropping the cluster's state: 3 services in 2 projects, their volumes and the local S3"
        " server's buckets. Keep them with: make dev-cluster-stop KEEP=1"
    )


def test_the_warning_counts_in_the_singular_and_skips_what_is_not_there() -> None:
    assert drop_warning(Inventory(1, 1), stack=False).startswith(
        "dropping the cluster's state: 1 service in 1 project, their volumes. Keep"
    )
    assert drop_warning(Inventory(0, 1), stack=False).startswith(
        "dropping the cluster's state: 0 services in 1 project. Keep"
    )


def test_an_unreadable_cluster_still_gets_a_warning() -> None:
    text = drop_warning(None, stack=False)
    assert text.startswith("dropping the cluster's state, their volumes.")
    assert "KEEP=1" in text


@pytest.mark.parametrize(
    ("inventory", "stack", "interactive", "yes", "asks"),
    [
        (Inventory(2, 1), False, True, False, True),
        (Inventory(2, 1), False, False, False, False),  # CI, scripts: never wait for an answer
        (Inventory(2, 1), False, True, True, False),  # YES=1
        (Inventory(0, 0), False, True, False, False),  # nothing to lose
        (Inventory(0, 0), True, True, False, True),  # buckets maybe
        (None, False, True, False, True),  # cannot tell: ask
    ],
)
def test_it_asks_only_at_a_terminal_when_something_would_be_lost(
    inventory: Inventory | None, stack: bool, interactive: bool, yes: bool, asks: bool
) -> None:
    assert needs_confirmation(inventory, stack=stack, interactive=interactive, yes=yes) is asks


def test_the_kept_record_round_trips_with_its_counts(tmp_path: Path) -> None:
    write_kept(tmp_path, Inventory(3, 2), NOON)
    kept = read_kept(tmp_path)
    assert kept is not None
    assert kept.inventory == Inventory(3, 2)
    assert resume_message(kept).startswith(
        "resuming the kept state of 2026-12-03 12:00 UTC: 3 services in 2 projects"
    )
    forget_kept(tmp_path)
    assert read_kept(tmp_path) is None


def test_a_kept_record_without_counts_still_resumes(tmp_path: Path) -> None:
    write_kept(tmp_path, None, NOON)
    kept = read_kept(tmp_path)
    assert kept is not None
    assert kept.inventory is None
    assert resume_message(kept).startswith("resuming the kept state of 2026-12-03 12:00 UTC (")
    assert "(2 services in 1 project), its volumes: the next" in keep_notice(
        Inventory(2, 1), stack=False
    )
    assert "its volumes and the local S3 server's data: the next" in keep_notice(None, stack=True)


def test_a_broken_record_is_no_record(tmp_path: Path) -> None:
    (tmp_path / KEPT_FILE).write_text("{not json")
    assert read_kept(tmp_path) is None


def test_only_kept_s3_data_is_dropped_a_running_server_keeps_its_dir(tmp_path: Path) -> None:
    data = tmp_path / STACK_DATA
    data.mkdir(parents=True)
    drop_stack_data(tmp_path)
    assert data.is_dir()
    (data / KEPT_FLAG).touch()
    drop_stack_data(tmp_path)
    assert not data.exists()


def test_a_stopped_cluster_with_kept_state_warns_with_the_kept_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_kept(tmp_path, Inventory(4, 2), NOON)
    assert confirm_drop(LocalCluster(tmp_path), yes=False, interactive=False)
    assert "dropping the cluster's state: 4 services in 2 projects" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("answer", "goes_on"), [("y", True), ("yes", True), ("", False), ("n", False)]
)
def test_at_a_terminal_only_a_yes_drops(tmp_path: Path, answer: str, goes_on: bool) -> None:
    write_kept(tmp_path, Inventory(1, 1), NOON)
    questions: list[str] = []

    def ask(question: str) -> str:
        questions.append(question)
        return answer

    assert confirm_drop(LocalCluster(tmp_path), yes=False, interactive=True, ask=ask) is goes_on
    assert questions == ["[dev-cluster-stop] drop it? [y/N] (YES=1 skips this question) "]
    assert confirm_drop(LocalCluster(tmp_path), yes=True, interactive=True, ask=ask)
    assert len(questions) == 1


def test_nothing_running_and_nothing_kept_stops_quietly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert confirm_drop(LocalCluster(tmp_path), yes=False, interactive=True)
    assert capsys.readouterr().err == ""


def test_what_is_counted_is_what_the_platform_writes() -> None:
    # devtools does not import the package, so keep.py spells these itself: they must not drift.
    assert keep.SERVICE_RECORD_TYPE == service_objects.META_TYPE
    assert keep.SERVICE_RECORD_PREFIX == service_objects.META_PREFIX
    assert f"{project_objects.MANAGED_LABEL}=onyxia-py" == keep.PROJECT_SELECTOR
