"""Runners on the real busybox image: bwrap (default sandbox), podman, local; and the run CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archive.container import (
    Mount,
    RunOutcome,
    SandboxSpec,
    get_runner,
    image_env,
    run_image,
    unpacked_root,
)
from archive.container import container_record as record_of
from archive.errors import ExecutionError, UnsafeInputError, ValidationError

pytestmark = pytest.mark.sandbox


def _run(runner: str, rootfs: Path | None, ws: Path, script: str, **kw: Any) -> tuple[RunOutcome, str, str]:
    r = get_runner(runner)
    reason = r.available()
    if reason is not None:
        pytest.skip(reason)
    spec = SandboxSpec(argv=["/bin/sh", "-c", script], rootfs=rootfs,
                       mounts=[Mount(ws, "/workspace", read_only=False), *kw.pop("mounts", [])], **kw)
    out, err = ws.parent / f"{runner}.out", ws.parent / f"{runner}.err"
    outcome = r.run(spec, stdout=out, stderr=err)
    return outcome, out.read_text(), err.read_text()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    d.mkdir()
    return d


@pytest.mark.parametrize("runner", ["bwrap", "podman"])
def test_sandbox_sees_whiteouts_and_has_no_network(runner: str, image_archive: Any, ws: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEP_HOST_SECRET", "must-not-leak")
    root = unpacked_root(image_archive, "busybox-test")
    env = image_env(record_of(image_archive, "busybox-test"))
    script = ("cat /etc/motd; test -e /etc/removed.txt && echo REMOVED-VISIBLE; ls /opt/data; "
              "cat /proc/net/dev; env; /usr/bin/env | grep -c HEP_IMAGE; "
              "nc -w 2 192.0.2.1 80 </dev/null && echo CONNECTED; "
              "touch /etc/intruder 2>/dev/null && echo ROOT-WRITABLE; echo result > out.txt; pwd")
    outcome, out, err = _run(runner, root, ws, script, env=env, timeout=120)
    assert outcome.exit_code == 0, err
    assert outcome.runner == runner and outcome.runner_version and outcome.ended >= outcome.started
    assert "hep-archive busybox test image" in out
    assert "REMOVED-VISIBLE" not in out and "old.txt" not in out and "new.txt" in out
    interfaces = [ln.split(":")[0].strip() for ln in out.splitlines() if ":" in ln and "|" not in ln
                  and ln.split(":")[0].strip().isalnum() and "=" not in ln]
    assert interfaces == ["lo"], out
    assert "CONNECTED" not in out and "ROOT-WRITABLE" not in out
    assert "HEP_IMAGE=busybox-test" in out and "HEP_HOST_SECRET" not in out
    assert out.strip().splitlines()[-1] == "/workspace"
    assert (ws / "out.txt").read_text() == "result\n"
    assert not (root / "etc/intruder").exists()


def test_bwrap_network_opt_in_shares_host_interfaces(image_archive: Any, ws: Path) -> None:
    host = [ln.split(":")[0].strip() for ln in Path("/proc/net/dev").read_text().splitlines()[2:]]
    if host == ["lo"]:
        pytest.skip("the host itself has only the loopback interface")
    outcome, out, _ = _run("bwrap", unpacked_root(image_archive, "busybox-test"), ws, "cat /proc/net/dev",
                           network=True)
    assert outcome.exit_code == 0
    assert sorted(ln.split(":")[0].strip() for ln in out.splitlines()[2:]) == sorted(host)


def test_bwrap_exit_code_timeout_and_read_only_mount(image_archive: Any, ws: Path, tmp_path: Path) -> None:
    root = unpacked_root(image_archive, "busybox-test")
    outcome, _, _ = _run("bwrap", root, ws, "exit 7")
    assert outcome.exit_code == 7 and not outcome.timed_out
    outcome, _, _ = _run("bwrap", root, ws, "sleep 30", timeout=1)
    assert outcome.timed_out and outcome.exit_code == 124
    data = tmp_path / "inputs"
    data.mkdir()
    (data / "in.txt").write_text("input\n")
    outcome, out, _ = _run("bwrap", root, ws, "cat /data/in/in.txt; echo x > /data/in/new 2>/dev/null || echo RO",
                           mounts=[Mount(data, "/data/in")])
    assert outcome.exit_code == 0 and out == "input\nRO\n"
    assert not (data / "new").exists()


def test_spec_checks(image_archive: Any, ws: Path) -> None:
    root = unpacked_root(image_archive, "busybox-test")
    bwrap = get_runner("bwrap")
    if (why := bwrap.available()) is not None:
        pytest.skip(why)
    for bad in ("relative", "/a/../../etc", "/"):
        with pytest.raises(UnsafeInputError, match="mount target"):
            bwrap.run(SandboxSpec(argv=["true"], rootfs=root, mounts=[Mount(ws, bad)]), stdout=ws / "o",
                      stderr=ws / "e")
    with pytest.raises(ValidationError, match="empty command"):
        bwrap.run(SandboxSpec(argv=[], rootfs=root), stdout=ws / "o", stderr=ws / "e")
    with pytest.raises(ValidationError, match="needs an image root"):
        bwrap.run(SandboxSpec(argv=["true"], rootfs=None), stdout=ws / "o", stderr=ws / "e")
    with pytest.raises(ValidationError, match="unknown runner 'kubernetes'"):
        get_runner("kubernetes")
    if not list(Path("/dev").glob("nvidia*")):
        with pytest.raises(ExecutionError, match="no /dev/nvidia"):
            bwrap.run(SandboxSpec(argv=["true"], rootfs=root, gpu=True), stdout=ws / "o", stderr=ws / "e")


def test_local_runner_records_host(ws: Path) -> None:
    outcome, out, _ = _run("local", None, ws, "pwd; echo $ONLY_THIS; echo made > f.txt", env={"ONLY_THIS": "yes"})
    assert outcome.exit_code == 0 and outcome.runner == "local" and "python" in outcome.runner_version
    assert out.splitlines() == [str(ws), "yes"]
    assert (ws / "f.txt").read_text() == "made\n"


@pytest.mark.parametrize("name", ["docker", "apptainer"])
def test_absent_runtimes_say_why(name: str) -> None:
    reason = get_runner(name).available()
    if reason is None:
        pytest.skip(f"{name} is usable here; nothing to check")
    assert name.split("/")[0] in reason or "info" in reason


def test_run_image_default_command_and_env(image_archive: Any, ws: Path) -> None:
    if (why := get_runner("bwrap").available()) is not None:
        pytest.skip(why)
    out = ws.parent / "o.txt"
    outcome = run_image(image_archive, "busybox-test", ["/usr/bin/env"], workspace=ws, env={"EXTRA": "1"},
                        stdout=out, stderr=ws.parent / "e.txt")
    assert outcome.exit_code == 0
    lines = set(out.read_text().splitlines())
    assert {"EXTRA=1", "HEP_IMAGE=busybox-test"} <= lines


def test_cli_container_commands(image_archive: Any, cli: Any, ws: Path, tmp_path: Path) -> None:
    root = image_archive.root
    if (why := get_runner("bwrap").available()) is not None:
        pytest.skip(why)
    r = cli("--root", root, "container", "run", "busybox-test", "--workspace", ws, "--", "sh", "-c",
            "cat /etc/motd; echo hi > made.txt; exit 3")
    assert r.code == 3 and "hep-archive busybox test image" in r.out
    assert (ws / "made.txt").read_text() == "hi\n"
    r = cli("--root", root, "--json", "container", "run", "busybox-test", "--workspace", ws, "--", "cat",
            "/etc/removed.txt")
    data = r.json()
    assert r.code == 1 and data["exit_code"] == 1 and "removed.txt" in data["stderr"] and data["runner"] == "bwrap"
    shown = cli("--root", root, "--json", "container", "show", "busybox-test").json()
    assert shown["ref"] == "container/busybox-test@1.0.0" and len(shown["layers"]) == 2
    listed = cli("--root", root, "--json", "container", "list").json()
    assert [x["ref"] for x in listed] == ["container/busybox-test@1.0.0"]
    out = tmp_path / "x.tar"
    r = cli("--root", root, "--json", "container", "export", "busybox-test", "--output", out)
    assert r.code == 0 and r.json()["manifest_digest"] == shown["manifest_digest"] and out.is_file()
    unpacked = cli("--root", root, "--json", "container", "unpack", "busybox-test").json()
    assert Path(unpacked["rootfs"]).is_dir() and unpacked["whiteouts"] == 2 and unpacked["notes"] == []
    runners = {x["name"]: x for x in cli("--root", root, "--json", "container", "runners").json()}
    assert runners["bwrap"]["available"] and runners["local"]["available"]
    assert set(runners) == {"bwrap", "podman", "docker", "apptainer", "local"}
    r = cli("--root", root, "container", "show", "nope")
    assert r.code == 4 and r.err.startswith("error: ")
    r = cli("--root", root, "container", "run", "busybox-test", "-e", "NOEQUALS", "--", "true")
    assert r.code == 1 and r.err == "error: --env: 'NOEQUALS': write --env NAME=VALUE\n"


def test_docker_command_line_isolates_like_podman(tmp_path: Path) -> None:
    """No daemon here, so only the command line is checked (the run itself is untested)."""
    from archive.container._runners import DockerRunner

    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    docker = DockerRunner()
    cmd = docker.command(SandboxSpec(argv=["sh", "-c", "true"], rootfs=rootfs, env={"A": "1"},
                                     mounts=[Mount(tmp_path, "/workspace", read_only=False)]))
    assert cmd[1:3] == ["run", "--rm"] and cmd[-3:] == ["sh", "-c", "true"]
    assert cmd[cmd.index("--network") + 1] == "none" and "--read-only" in cmd and "--cap-drop" in cmd
    assert f"{tmp_path}:/workspace:rw" in cmd and "A=1" in cmd
    assert cmd[-4] == docker.image_tag(rootfs) and cmd[-4].startswith("hep-archive-rootfs:")
    net = docker.command(SandboxSpec(argv=["true"], rootfs=rootfs, network=True))
    assert net[net.index("--network") + 1] == "bridge"
