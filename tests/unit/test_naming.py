"""Safe Kubernetes names."""

from __future__ import annotations

import random
import string

import pytest

from onyxia_py.naming import (
    MAX_LABEL,
    UnsafeName,
    is_label,
    prefixed_label,
    safe_label,
    slugify,
)


@pytest.mark.parametrize("name", ["alice", "bob-2", "a", "x" * 63])
def test_valid_labels_are_kept(name: str) -> None:
    assert safe_label(name) == name


@pytest.mark.parametrize(
    "name", ["Alice", "jean.dupont", "émile", "a_b", "-lead", "trail-", "x" * 64, "a@b.fr", "名前"]
)
def test_unsafe_names_become_valid_labels(name: str) -> None:
    label = safe_label(name)
    assert is_label(label), label
    assert len(label) <= MAX_LABEL


def test_slug_keeps_a_readable_stem() -> None:
    assert safe_label("Jean.Dupont@insee.fr").startswith("jean-dupont-insee-fr-")
    assert slugify("Émile  Zola") == "emile-zola"


def test_case_variants_do_not_collide() -> None:
    assert safe_label("bob") != safe_label("Bob")
    assert safe_label("Bob") != safe_label("BOB")


def test_long_names_with_a_common_prefix_do_not_collide() -> None:
    base = "a" * 80
    assert safe_label(base + "1") != safe_label(base + "2")


def test_names_are_stable() -> None:
    assert safe_label("Jean.Dupont") == safe_label("Jean.Dupont")


def test_no_collisions_among_many_random_names() -> None:
    rng = random.Random(42)
    alphabet = string.ascii_letters + string.digits + "._-@ é"
    names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90))) for _ in range(5000)}
    labels = {safe_label(n) for n in names}
    assert len(labels) == len(names)
    assert all(is_label(label) for label in labels)


def test_nothing_readable_still_gives_a_label() -> None:
    label = safe_label("@@@")
    assert is_label(label)
    assert label.startswith("x-")


def test_empty_name_is_refused() -> None:
    with pytest.raises(UnsafeName):
        safe_label("")


def test_prefixed_labels_fit_in_63_characters() -> None:
    assert prefixed_label("user-", "alice") == "user-alice"
    long = prefixed_label("projet-", "g" * 100)
    assert is_label(long)
    assert long.startswith("projet-g")


def test_release_name_limit() -> None:
    assert len(safe_label("x" * 80, max_length=53)) == 53


def test_bad_prefix_is_refused() -> None:
    with pytest.raises(UnsafeName):
        prefixed_label("User_", "alice")
