"""Drive reana-client's Python API: create, upload inputs, start, poll, fetch logs, download outputs.

Runs inside the interpreter that has ``reana-client`` (its own environment, since its pins clash with ours):
``python _reana_bridge.py`` reads one JSON request on stdin and writes one JSON answer on stdout. It imports
nothing from ``archive``. TLS certificates are always verified: the bravado client is created with
``ssl_verify`` on, and the plain ``requests`` calls reana-client makes for uploads and downloads (which it
hard-codes to ``verify=False``) are routed through a wrapper that forces verification (``REQUESTS_CA_BUNDLE``
names the CA to trust, e.g. a site CA or a test's self-signed one).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

FINAL = ("finished", "failed", "stopped", "deleted")


class _VerifyingRequests:
    """``requests`` as reana-client uses it, except that ``verify`` can never be switched off."""

    def __init__(self, verify: bool | str) -> None:
        self._requests = importlib.import_module("requests")
        self._verify = verify

    def __getattr__(self, name: str) -> Any:
        return getattr(self._requests, name)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = self._verify
        return self._requests.get(*args, **kwargs)

    def post(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = self._verify
        return self._requests.post(*args, **kwargs)


def _client(verify: bool | str) -> Any:
    requests_client = importlib.import_module("bravado.requests_client")
    api_client = importlib.import_module("reana_commons.api_client")
    # BaseAPIClient keeps one bravado client per process: create it first, with verification on.
    api_client.BaseAPIClient("reana-server", http_client=requests_client.RequestsClient(ssl_verify=verify))
    client = importlib.import_module("reana_client.api.client")
    setattr(client, "requests", _VerifyingRequests(verify))  # noqa: B010 - replace its verify=False calls
    return client


def submit(request: dict[str, Any]) -> dict[str, Any]:
    """Run one workflow on a REANA server and download its declared outputs into the workspace.

    ``request``: ``{"name", "spec" (reana.yaml as data), "workspace", "inputs" (relative paths),
    "parameters", "outputs", "poll_interval", "timeout"}``; the server and token come from
    ``REANA_SERVER_URL`` and ``REANA_ACCESS_TOKEN``."""
    token = os.environ.get("REANA_ACCESS_TOKEN")
    if not os.environ.get("REANA_SERVER_URL") or not token:
        return {"error": "set REANA_SERVER_URL and REANA_ACCESS_TOKEN to use the reana backend"}
    if not os.environ["REANA_SERVER_URL"].startswith("https://"):
        return {"error": "REANA_SERVER_URL must be an https:// URL (certificates are verified)"}
    verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or True
    client = _client(verify)
    ws = Path(request["workspace"])
    out: dict[str, Any] = {"uploaded": [], "downloaded": []}
    created = client.create_workflow(request["spec"], request["name"], token)
    wid = created["workflow_id"]
    out.update(workflow_id=wid, workflow_name=created.get("workflow_name"))
    for rel in request["inputs"]:
        with open(ws / rel, "rb") as fh:
            client.upload_file(wid, fh, rel, token)
        out["uploaded"].append(rel)
    client.start_workflow(wid, token, {"input_parameters": request.get("parameters") or {},
                                       "operational_options": {}})
    deadline = time.monotonic() + float(request.get("timeout") or 3600)
    status: dict[str, Any] = {}
    while True:
        status = client.get_workflow_status(wid, token)
        if status.get("status") in FINAL:
            break
        if time.monotonic() > deadline:
            out["error"] = f"workflow {wid} still {status.get('status')} after {request.get('timeout')} s"
            break
        time.sleep(float(request.get("poll_interval") or 2.0))
    out["status"] = status.get("status")
    out["progress"] = status.get("progress") or {}
    logs = client.get_workflow_logs(wid, token)
    out["logs"] = logs.get("logs") or ""
    if out["status"] == "finished":
        for rel in request["outputs"]:
            content, _name, zipped = client.download_file(wid, rel, token)
            if zipped:
                out["error"] = f"{rel}: the server sent a zip of several files; declare files, not folders"
                break
            target = ws / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            out["downloaded"].append(rel)
    return out


def describe(exc: BaseException) -> str:
    """The exception and everything it wraps (bravado hides TLS errors in ``__cause__``/``args``)."""
    parts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        text = str(e).strip()
        parts.append(f"{type(e).__name__}: {text}" if text else type(e).__name__)
        todo += [x for x in (e.__cause__, e.__context__, getattr(e, "inner_exception", None), *e.args)
                 if isinstance(x, BaseException)]
    return " <- ".join(parts)[:2000]


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        answer = submit(request)
    except Exception as exc:  # reana-client raises bare Exceptions with the server's message
        answer = {"error": describe(exc)}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
