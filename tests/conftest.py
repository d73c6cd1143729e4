"""Shared fixtures: a fresh archive root, the real files in ../shared/data, and a CLI runner."""

from __future__ import annotations

import io
import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the folder of real test files: $HEP_ARCHIVE_TEST_DATA, else ../shared/data beside the checkout
TEST_DATA_ENV = "HEP_ARCHIVE_TEST_DATA"  # archive.datasets.testing.TEST_DATA_ENV (not imported: keep startup light)
SHARED_DATA = Path(os.environ.get(TEST_DATA_ENV) or REPO.parent / "shared" / "data").absolute()

# The package never looks for the reana-client environment beside its own files (an installed wheel has none
# around it): the tests name this checkout's one, unless the caller chose one. Set at import, before test
# modules ask for it in their skip marks.
_REANA_PYTHON = REPO / ".venv-reana" / "bin" / "python"
if not os.environ.get("HEP_ARCHIVE_REANA_PYTHON") and _REANA_PYTHON.exists():
    os.environ["HEP_ARCHIVE_REANA_PYTHON"] = str(_REANA_PYTHON)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*args: str | os.PathLike[str]) -> CliResult:
    """Run ``hep-archive ARGS`` in-process and capture its exit code, stdout and stderr."""
    from archive.cli import main
    from archive.cli._common import STATE, console, err_console

    out, err = io.StringIO(), io.StringIO()
    old = (console.file, err_console.file)
    console.file, err_console.file = out, err
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main([os.fspath(a) for a in args])
    finally:
        console.file, err_console.file = old
        STATE.root, STATE.json, STATE.debug = None, False, False
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Any:
    return run_cli


@pytest.fixture
def tmp_archive(tmp_path: Path) -> Any:
    from archive._archive import init_archive

    return init_archive(tmp_path / "arc")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test files not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _test_data_env() -> Iterator[None]:
    """Library test helpers (``archive.datasets.testing``) take the real files from ``$HEP_ARCHIVE_TEST_DATA``."""
    with pytest.MonkeyPatch.context() as mp:
        if SHARED_DATA.is_dir():
            mp.setenv(TEST_DATA_ENV, str(SHARED_DATA))
        yield


@pytest.fixture(autouse=True)
def _no_root_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("HEP_ARCHIVE_ROOT", raising=False)
    yield


def pytest_report_header(config: pytest.Config) -> str:
    return f"hep-archive tests; python {sys.version.split()[0]}; shared data: {SHARED_DATA.is_dir()}"


# --- a real S3-compatible server (moto in server mode) on 127.0.0.1, shared by storage and integrity tests ---
_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_SESSION_TOKEN": "testing"}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Start moto's S3-compatible HTTP server in a thread; yields its endpoint URL."""
    pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer

    old = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    import boto3

    name = f"hep-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name

