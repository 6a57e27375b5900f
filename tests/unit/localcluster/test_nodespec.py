"""NodeSpec counts simulated and real nodes apart; the simulated node's options are unchanged."""

from __future__ import annotations

import pytest

from devtools.localcluster import NodeSpec


def test_real_and_simulated_nodes_are_named_apart() -> None:
    spec = NodeSpec(count=2, real=1)
    assert spec.node_names() == ["sim-node-0", "sim-node-1"]
    assert spec.real_node_names() == ["real-node-0"]
    assert NodeSpec().real == 0
    assert NodeSpec(count=0, real=1).node_names() == []


def test_simnode_options_do_not_mention_real_nodes() -> None:
    args = NodeSpec(count=1, real=3).cli_args()
    assert args[:2] == ["--nodes", "1"]
    assert not any("real" in a for a in args)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        NodeSpec(real=-1)
