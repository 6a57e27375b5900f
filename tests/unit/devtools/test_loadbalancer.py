"""The load balancer's nginx configuration: round robin over every upstream, a failing one
skipped and benched, streams unbuffered; addresses that could break the file are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.loadbalancer import BalancerSettings, render

UPSTREAMS = ("127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003")


def settings(**overrides: object) -> BalancerSettings:
    values: dict[str, object] = {
        "listen": "127.0.0.1:9000",
        "upstreams": UPSTREAMS,
        "state_dir": Path("/tmp/lb"),
    }
    values.update(overrides)
    return BalancerSettings(**values)  # type: ignore[arg-type]


def test_every_upstream_is_listed_with_its_failure_bench() -> None:
    text = render(settings(max_fails=2, fail_timeout_s=7))
    for upstream in UPSTREAMS:
        assert f"server {upstream} max_fails=2 fail_timeout=7s;" in text
    assert "listen 127.0.0.1:9000;" in text
    assert "proxy_pass http://replicas;" in text


def test_a_refused_upstream_is_retried_on_the_others_and_streams_are_unbuffered() -> None:
    text = render(settings())
    assert "proxy_next_upstream error timeout;" in text
    assert "proxy_next_upstream_tries 3;" in text
    assert "proxy_buffering off;" in text
    assert "proxy_request_buffering off;" in text
    assert "proxy_http_version 1.1;" in text


def test_everything_nginx_writes_stays_in_the_state_directory() -> None:
    text = render(settings(state_dir=Path("/tmp/lb-x")))
    paths = [line.split('"')[1] for line in text.splitlines() if '"/' in line]
    assert paths
    assert all(p.startswith("/tmp/lb-x/") for p in paths), paths


def test_the_worker_user_is_named_only_when_given() -> None:
    assert "user " not in render(settings())
    assert "user root;" in render(settings(), user="root")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("upstreams", ()),
        ("upstreams", ("127.0.0.1:8001; include /etc/passwd",)),
        ("upstreams", ("127.0.0.1",)),
        ("listen", "0.0.0.0:80 default_server"),
    ],
)
def test_addresses_that_could_break_the_file_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=r"upstream|address"):
        settings(**{field: value})
