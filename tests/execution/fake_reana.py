"""A FAKE REANA server for tests: speaks REANA's REST API (reana-commons' ``reana_server.json`` OpenAPI), on
127.0.0.1 over TLS with a certificate made by the test, and executes nothing.

It implements the endpoints reana-client's Python API calls for a run: ``GET /api/you`` (ping),
``POST /api/workflows`` (create), ``POST /api/workflows/{id}/workspace`` (upload), ``POST
/api/workflows/{id}/start``, ``GET /api/workflows/{id}/status``, ``GET /api/workflows/{id}/logs`` and ``GET
/api/workflows/{id}/workspace/{file_name}`` (download). Responses follow the OpenAPI response schemas (bravado
validates them). Instead of running the workflow, ``produce(spec, files, parameters)`` returns the bytes of
the output files; the workflow goes ``created -> queued -> running -> finished`` over successive status polls.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

Produce = Callable[[dict[str, Any], dict[str, bytes], dict[str, Any]], dict[str, bytes]]


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it: ``(ca.pem, cert.pem, key.pem)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hep-archive test CA (fake REANA)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_pem, cert_pem, key_pem


@dataclass
class FakeWorkflow:
    id: str
    name: str
    spec: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    status: str = "created"
    polls: int = 0
    outputs: dict[str, bytes] = field(default_factory=dict)
    created: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"))


class FakeReana:
    """The fake server. ``calls`` lists ``(method, path)`` of every request, in order."""

    def __init__(self, tls_dir: Path, token: str, produce: Produce, *, fail: bool = False) -> None:
        self.token = token
        self.produce = produce
        self.fail = fail
        self.workflows: dict[str, FakeWorkflow] = {}
        self.calls: list[tuple[str, str]] = []
        self.ca, cert, key = make_tls_files(tls_dir)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeReana:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def workflow(self, key: str) -> FakeWorkflow | None:
        for wf in self.workflows.values():
            if key in (wf.id, wf.name):
                return wf
        return None

    def status_of(self, wf: FakeWorkflow) -> dict[str, Any]:
        if wf.status in ("queued", "running"):  # advance one state per poll, like a slow cluster
            wf.polls += 1
            if wf.polls >= 2:
                wf.status = "failed" if self.fail else "finished"
                if not self.fail:
                    wf.outputs = self.produce(wf.spec, wf.files, wf.parameters)
            else:
                wf.status = "running"
        steps = (wf.spec.get("workflow", {}).get("specification") or {}).get("steps") or []
        done = len(steps) if wf.status == "finished" else 0
        ts = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return {
            "created": wf.created, "id": wf.id, "name": wf.name, "status": wf.status, "user": "fake-user",
            "logs": "", "progress": {
                "total": {"total": len(steps), "job_ids": []}, "finished": {"total": done, "job_ids": []},
                "failed": {"total": 1 if wf.status == "failed" else 0, "job_ids": []},
                "running": {"total": 1 if wf.status == "running" else 0, "job_ids": []},
                "run_started_at": wf.created, "run_finished_at": ts if wf.status in ("finished", "failed") else None,
                "current_step_name": None, "current_command": None,
            },
        }


def _handler(server: FakeReana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            return

        def _send(self, code: int, body: Any, ctype: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            server.calls.append((method, url.path))
            body = self._body()
            if query.get("access_token") != server.token:
                self._send(403, {"message": "Token is not valid."})
                return
            parts = [unquote(p) for p in url.path.split("/") if p]
            if parts == ["api", "you"] and method == "GET":
                self._send(200, {"email": "fake@example.org", "reana_server_version": "0.9.3-fake"})
                return
            if parts == ["api", "workflows"] and method == "POST":
                name = query.get("workflow_name") or "workflow"
                n = sum(1 for w in server.workflows.values() if w.name.startswith(name + ".")) + 1
                wf = FakeWorkflow(str(uuid.uuid4()), f"{name}.{n}", json.loads(body or b"{}"))
                server.workflows[wf.id] = wf
                self._send(201, {"message": "The workflow has been successfully created.",
                                 "workflow_id": wf.id, "workflow_name": wf.name})
                return
            if len(parts) >= 4 and parts[:2] == ["api", "workflows"]:
                wf = server.workflow(parts[2])
                if wf is None:
                    self._send(404, {"message": f"REANA_WORKON is set to {parts[2]}, but that workflow does "
                                                "not exist."})
                    return
                action = parts[3]
                if action == "workspace" and method == "POST" and len(parts) == 4:
                    wf.files[query["file_name"]] = body
                    self._send(200, {"message": f"{query['file_name']} has been successfully uploaded."})
                    return
                if action == "workspace" and method == "GET" and len(parts) > 4:
                    rel = "/".join(parts[4:])
                    data = wf.outputs.get(rel, wf.files.get(rel))
                    if data is None:
                        self._send(404, {"message": f"{rel} does not exist."})
                        return
                    self._send(200, data, "application/octet-stream",
                               {"Content-Disposition": f"attachment; filename={rel.rsplit('/', 1)[-1]}"})
                    return
                if action == "start" and method == "POST":
                    wf.parameters = (json.loads(body or b"{}") or {}).get("input_parameters") or {}
                    wf.status = "queued"
                    self._send(200, {"message": "Workflow submitted.", "status": "queued", "user": "fake-user",
                                     "workflow_id": wf.id, "workflow_name": wf.name})
                    return
                if action == "status" and method == "GET":
                    self._send(200, server.status_of(wf))
                    return
                if action == "logs" and method == "GET":
                    logs = {"workflow_logs": f"fake REANA: nothing was executed for {wf.name}",
                            "job_logs": {}, "engine_specific": None}
                    self._send(200, {"logs": json.dumps(logs), "user": "fake-user", "workflow_id": wf.id,
                                     "workflow_name": wf.name})
                    return
            self._send(404, {"message": f"the fake REANA server does not implement {method} {url.path}"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler
