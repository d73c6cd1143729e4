"""Store fixtures: a real moto S3 server on 127.0.0.1 (not mocked clients), one bucket per test."""

from __future__ import annotations

from typing import Any


def s3_store_options(endpoint: str) -> dict[str, Any]:
    return {"endpoint_url": endpoint}
