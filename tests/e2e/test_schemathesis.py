"""Schemathesis fuzzes every operation of ``/openapi.json`` against a real uvicorn server on the
shipped sample: no request, however odd, gets a 5xx, a status the operation does not declare, or
a body that does not match its declared response model."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.web_fixtures import sample_server

TOKEN = "schemathesis-token-0123456789"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sample_server(tmp_path_factory.mktemp("schemathesis"), TOKEN) as (served, _):
        yield served


def test_fuzzing_every_operation_finds_no_server_error_and_no_undeclared_answer(
    url: str, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{url}/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--checks", CHECKS,
        "--max-examples", "40",
        "--generation-deterministic",
        "--report-dir", str(tmp_path),
    ]  # fmt: skip

    paths = httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    operations = sum(len(methods) for methods in paths.values())

    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)

    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert tested is not None and int(tested.group(1)) == operations >= 15, run.stdout[-3000:]
