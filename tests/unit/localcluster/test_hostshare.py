"""The host record: the first holder saves sysctls and which dirs existed, the last restores
them and removes the dirs that were absent; holders whose bridge is gone do not count."""

from __future__ import annotations

import json
from pathlib import Path

from devtools.localcluster.hostshare import KUBELET_SYSCTLS, HostPaths, acquire, release


def host(tmp_path: Path) -> HostPaths:
    proc, net = tmp_path / "proc", tmp_path / "net"
    for name in KUBELET_SYSCTLS:
        (proc / name).parent.mkdir(parents=True, exist_ok=True)
        (proc / name).write_text("0\n")
    net.mkdir()
    shared = (str(tmp_path / "var/log/containers"), str(tmp_path / "var/lib/cni"))
    return HostPaths(tmp_path / "record", proc, shared, str(tmp_path / "dp"), net)


def test_last_holder_restores_what_the_first_saw(tmp_path: Path) -> None:
    h = host(tmp_path)
    (h.net / "onyxia0").touch()
    (h.net / "onyxia1").touch()
    acquire("onyxia0", h)
    # The kubelet changes a sysctl and creates the dirs; a second cluster comes and goes.
    (h.proc_sys / "vm/overcommit_memory").write_text("1\n")
    for d in h.shared_dirs:
        Path(d).mkdir(parents=True)
    acquire("onyxia1", h)
    assert json.loads((h.record_dir / "host.json").read_text())["holders"] == ["onyxia0", "onyxia1"]
    assert release("onyxia1", h) == []
    assert (h.proc_sys / "vm/overcommit_memory").read_text() == "1\n"
    assert all(Path(d).is_dir() for d in h.shared_dirs)
    assert release("onyxia0", h) == []
    assert (h.proc_sys / "vm/overcommit_memory").read_text() == "0"
    assert not any(Path(d).exists() for d in h.shared_dirs)
    assert not h.record_dir.exists()


def test_dirs_that_existed_or_hold_others_files_stay(tmp_path: Path) -> None:
    h = host(tmp_path)
    kept, busy = Path(h.shared_dirs[0]), Path(h.shared_dirs[1])
    kept.mkdir(parents=True)
    (h.net / "onyxia0").touch()
    acquire("onyxia0", h)
    busy.mkdir(parents=True)
    (busy / "someone-elses").touch()
    assert release("onyxia0", h) == []
    assert kept.is_dir()
    assert (busy / "someone-elses").exists()


def test_a_crashed_holder_does_not_keep_the_record(tmp_path: Path) -> None:
    h = host(tmp_path)
    acquire("onyxia5", h)  # its bridge never existed here: a crashed run
    (h.proc_sys / "kernel/panic").write_text("10\n")
    (h.net / "onyxia0").touch()
    acquire("onyxia0", h)
    record = json.loads((h.record_dir / "host.json").read_text())
    assert record["holders"] == ["onyxia0"]
    assert record["sysctls"]["kernel/panic"] == "0"
    release("onyxia0", h)
    assert (h.proc_sys / "kernel/panic").read_text() == "0"
