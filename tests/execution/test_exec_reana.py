"""The REANA backend against a FAKE REANA server (tests/execution/fake_reana.py) on 127.0.0.1 over TLS.

reana-client runs in its own environment (``.venv-reana``); these tests skip when it is absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cryptography", reason="the fake REANA server's test certificates need cryptography")
from fake_reana import FakeReana

from archive.errors import MissingDependencyError
from archive.execution import rerun, run_recipe
from archive.recipe import add_recipe
from archive.recipe._reana_schema import reana_python

HOST = "docker.io/library/busybox@sha256:" + "34" * 32
TOKEN = "fake-token-0123"

pytestmark = pytest.mark.skipif(reana_python() is None,
                                reason="reana-client environment .venv-reana (or HEP_ARCHIVE_REANA_PYTHON) is absent")


def _produce(spec: dict[str, Any], files: dict[str, bytes], params: dict[str, Any]) -> dict[str, bytes]:
    """What the fake 'computes' instead of running anything: the two-step recipe's final output."""
    return {"results/final.txt": files["data/a.txt"].upper() + files["data/b.txt"] + f"{params['greeting']}\n".encode()}


@pytest.fixture
def reana_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HEP_ARCHIVE_REANA_POLL", "0.05")

    def configure(server: FakeReana, *, ca: Path | None = None, token: str = TOKEN) -> None:
        monkeypatch.setenv("REANA_SERVER_URL", server.url)
        monkeypatch.setenv("REANA_ACCESS_TOKEN", token)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca or server.ca))

    return configure


def test_reana_round_trip(tmp_archive: Any, two_step: Any, tmp_path: Path, reana_env: Any) -> None:
    from archive.catalog import validate_archive
    from archive.digest import digest_bytes

    rec = add_recipe(tmp_archive, two_step(env=HOST))
    with FakeReana(tmp_path / "tls", TOKEN, _produce) as server:
        reana_env(server)
        res = run_recipe(tmp_archive, rec.ref, backend="reana", parameters={"greeting": "remote"})
        again = rerun(tmp_archive, res.record.ref)  # recorded backend and parameters
    assert res.ok, res.record.run.error
    comparison = again.record.run.comparison
    assert comparison is not None and comparison.verdict == "reproduced"
    assert again.record.run.reana_workflow != res.record.run.reana_workflow
    wid = res.record.run.reana_workflow
    assert wid in server.workflows and len(server.workflows) == 2
    wf = server.workflows[wid]
    assert wf.spec["workflow"]["type"] == "serial" and wf.parameters == {"greeting": "remote"}
    assert set(wf.files) == {"data/a.txt", "data/b.txt"}
    calls = [f"{m} {p.replace(wid, 'ID')}" for m, p in server.calls if wid in p or p == "/api/workflows"][:8]
    assert calls[0] == "POST /api/workflows"
    assert calls.count("POST /api/workflows/ID/workspace") == 2
    assert "POST /api/workflows/ID/start" in calls and "GET /api/workflows/ID/status" in calls
    assert calls[-1] == "GET /api/workflows/ID/workspace/results/final.txt"
    expected = b"ALPHA\nBETA\ngamma\nremote\n"
    assert (res.workspace / "results" / "final.txt").read_bytes() == expected
    out = res.record.run.outputs
    assert [(o.path, o.sha256) for o in out] == [("results/final.txt", digest_bytes(expected))]
    assert tmp_archive.store.exists(digest_bytes(expected))
    assert res.record.run.backend == "reana" and all(s.runner == "reana" for s in res.record.run.steps)
    log = tmp_archive.store.read_bytes(res.record.run.steps[0].stdout)
    assert b"nothing was executed" in log
    assert validate_archive(tmp_archive) == []


def test_reana_verifies_tls_certificates(tmp_archive: Any, two_step: Any, tmp_path: Path, reana_env: Any) -> None:
    from fake_reana import make_tls_files

    other_ca, _, _ = make_tls_files(tmp_path / "other")
    rec = add_recipe(tmp_archive, two_step(env=HOST))
    with FakeReana(tmp_path / "tls", TOKEN, _produce) as server:
        reana_env(server, ca=other_ca)  # trust a different CA: the handshake must fail
        res = run_recipe(tmp_archive, rec.ref, backend="reana")
    assert not res.ok
    assert "CERTIFICATE_VERIFY_FAILED" in (res.record.run.error or "") or \
        "certificate verify failed" in (res.record.run.error or "").lower()
    assert server.workflows == {}


def test_reana_bad_token_and_failed_workflow(tmp_archive: Any, two_step: Any, tmp_path: Path,
                                             reana_env: Any) -> None:
    rec = add_recipe(tmp_archive, two_step(env=HOST))
    with FakeReana(tmp_path / "tls", TOKEN, _produce) as server:
        reana_env(server, token="wrong")
        res = run_recipe(tmp_archive, rec.ref, backend="reana")
        assert not res.ok and "Token is not valid" in (res.record.run.error or "")
    with FakeReana(tmp_path / "tls2", TOKEN, _produce, fail=True) as server:
        reana_env(server)
        res = run_recipe(tmp_archive, rec.ref, backend="reana")
    assert not res.ok and "ended failed" in (res.record.run.error or "")
    assert res.record.run.outputs == []


def test_reana_missing_environment_is_a_clear_error(tmp_archive: Any, two_step: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEP_ARCHIVE_REANA_PYTHON", "/nonexistent/python")
    rec = add_recipe(tmp_archive, two_step(env=HOST))
    with pytest.raises(MissingDependencyError, match="venv-reana"):
        run_recipe(tmp_archive, rec.ref, backend="reana")
