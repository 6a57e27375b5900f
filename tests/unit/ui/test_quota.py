"""Quota gauges: a ResourceQuota's used and hard amounts in people's units."""

from __future__ import annotations

from onyxia_py.api.ui_support import quota_lines


def test_quota_lines_read_used_of_hard_in_human_units() -> None:
    quota = {
        "spec": {"hard": {"requests.cpu": "4"}},
        "status": {
            "hard": {
                "requests.cpu": "4",
                "requests.memory": "16Gi",
                "count/pods": "20",
                "requests.nvidia.com/gpu": "2",
            },
            "used": {"requests.cpu": "3500m", "requests.memory": "2Gi", "count/pods": "1"},
        },
    }
    lines = {line.resource: line for line in quota_lines(quota)}
    cpu, memory = lines["requests.cpu"], lines["requests.memory"]
    assert (cpu.label, cpu.used_text, cpu.hard_text, cpu.percent) == (
        "CPU guaranteed",
        "3.5 CPU",
        "4 CPU",
        87,
    )
    assert (memory.used_text, memory.hard_text, memory.percent) == ("2 GiB", "16 GiB", 12)
    assert (lines["count/pods"].used_text, lines["count/pods"].hard_text) == ("1", "20")
    gpus = lines["requests.nvidia.com/gpu"]
    assert (gpus.label, gpus.used, gpus.percent) == ("GPUs", "0", 0)


def test_no_quota_no_lines_and_odd_amounts_are_shown_as_written() -> None:
    assert quota_lines(None) == []
    odd = quota_lines({"status": {"hard": {"x": "lots"}, "used": {"x": "some"}}})
    assert [(q.label, q.used_text, q.hard_text, q.percent) for q in odd] == [
        ("x", "some", "lots", 0)
    ]
