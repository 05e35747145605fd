"""The SageMaker container contract: GET /ping and POST /invocations with CSV and JSON."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.packaging.build import PackageResult
from pipelines.packaging.load import load_package
from pipelines.serving.server import VERSION_HEADER, ModelServer

ROW = [39, "State-gov", "Bachelors", 13, "Never-married", "Adm-clerical", "Not-in-family", "White", "Male",
       2174, 0, 40, "United-States"]  # fmt: skip


@pytest.fixture
def server(package: PackageResult) -> Iterator[str]:
    model = load_package(package.path)
    httpd = ModelServer(model, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _post(
    url: str, body: bytes, content_type: str, accept: str = "application/json"
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": content_type, "Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def test_ping_answers_200(server: str) -> None:
    with urllib.request.urlopen(f"{server}/ping", timeout=10) as response:
        assert response.status == 200


def test_json_rows_by_name_get_a_probability_and_a_label(server: str, package: PackageResult) -> None:
    columns = package.manifest["features"]
    status, body, headers = _post(
        server, json.dumps({"instances": [dict(zip(columns, ROW, strict=True))]}).encode(), "application/json"
    )
    assert status == 200
    answer = json.loads(body)
    assert answer["model_version"] == package.package_id == headers[VERSION_HEADER]
    [prediction] = answer["predictions"]
    assert 0 <= prediction["probability"] <= 1
    assert prediction["label"] in ("<=50K", ">50K")


def test_csv_with_a_header_and_csv_output(server: str, package: PackageResult) -> None:
    header = ",".join(package.manifest["features"])
    line = ",".join(str(v) for v in ROW)
    status, body, headers = _post(
        server, f"{header}\n{line}\n{line}\n".encode(), "text/csv", accept="text/csv"
    )
    assert status == 200
    assert headers["Content-Type"] == "text/csv"
    lines = body.decode().splitlines()
    assert lines[0] == "probability,label"
    assert len(lines) == 3 and lines[1] == lines[2]


def test_csv_and_json_agree(server: str) -> None:
    _, csv_body, _ = _post(server, ",".join(str(v) for v in ROW).encode(), "text/csv")
    _, json_body, _ = _post(server, json.dumps([ROW]).encode(), "application/json")
    assert json.loads(csv_body)["predictions"] == json.loads(json_body)["predictions"]


def test_a_bad_value_is_a_400_naming_row_and_column(server: str) -> None:
    row = list(ROW)
    row[0] = "old"
    status, body, _ = _post(server, json.dumps([row]).encode(), "application/json")
    assert status == 400
    assert json.loads(body)["error"] == "row 0: column 'age' = 'old': expected a number"


def test_an_unsupported_content_type_is_a_415(server: str) -> None:
    status, body, _ = _post(server, b"<xml/>", "application/xml")
    assert status == 415
    assert "supported: text/csv, application/json" in json.loads(body)["error"]


def test_the_server_module_refuses_a_tampered_model_dir(package: PackageResult, tmp_path: Path) -> None:
    from pipelines.packaging.load import extract_package
    from pipelines.serving.__main__ import main

    model_dir = extract_package(package.path, tmp_path / "model")
    (model_dir / "schema.json").write_text("{}", encoding="utf-8")
    assert main(["--model-dir", str(model_dir), "--port", "0"]) == 1
