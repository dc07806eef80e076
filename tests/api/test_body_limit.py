"""Request bodies over `api_max_body_bytes` get 413 with a Problem body and are counted, whether
the client declares a Content-Length or streams the body chunked without one. Sent as raw HTTP to
a real uvicorn server: the test client cannot send a chunked body without a length."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator

import orjson
import pytest

from api.app import create_app
from pilotlab.settings import Settings
from tests.api.conftest import served
from tests.support import admin_headers

LIMIT = 16_384


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[str, int, str]]:
    token = admin_headers(database_url)["Authorization"]
    with served(create_app(Settings(database_url=database_url, api_max_body_bytes=LIMIT))) as (host, port):
        yield host, port, token


def exchange(host: str, port: int, head: str, chunks: list[bytes]) -> tuple[int, bytes]:
    """Send a request head and then its body in chunked transfer encoding; return status and body."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and stop reading before the body ends
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1][:_length(answer)]


def _length(answer: bytes) -> int:
    found = re.search(rb"(?i)content-length: *(\d+)", answer.split(b"\r\n\r\n", 1)[0])
    return int(found[1]) if found else 0


def _head(path: str, token: str) -> str:
    return (f"POST {path} HTTP/1.1\r\nHost: api\r\nAuthorization: {token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")


def rejected(host: str, port: int) -> float:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        text = b""
        while data := sock.recv(65536):
            text += data
    found = re.search(rb'pilotlab_api_rejected_requests_total\{reason="body_too_large"\} ([0-9.]+)', text)
    return float(found[1]) if found else 0.0


def test_an_oversized_chunked_body_without_a_length_is_413_with_a_problem_body_and_counted(
        api: tuple[str, int, str]) -> None:
    host, port, token = api
    padding = b" " * 4096
    status, body = exchange(host, port, _head("/firms", token), [b'{"id": "big", "name": "x"'] + [padding] * 8 + [b"}"])
    assert status == 413
    assert orjson.loads(body) == {"detail": f"the request body is larger than {LIMIT} bytes"}
    assert rejected(host, port) == 1.0


def test_a_chunked_body_within_the_limit_is_read_as_usual(api: tuple[str, int, str],
                                                          unique_id: Callable[[str], str]) -> None:
    host, port, token = api
    firm = unique_id("chunked")
    status, body = exchange(host, port, _head("/firms", token),
                            [f'{{"id": "{firm}", '.encode(), b'"name": "Chunked Co"}'])
    assert status == 201, body
    assert orjson.loads(body)["id"] == firm
    assert rejected(host, port) == 0.0
