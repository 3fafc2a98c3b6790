"""The bench measures its own server or says loudly that it cannot: a port held by another
server once made it report that server's pages and a ratio of None."""

from __future__ import annotations

import http.server
import os
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench  # noqa: E402

pytestmark = pytest.mark.slow


class Impostor(http.server.BaseHTTPRequestHandler):
    """Another server on the port, answering every path as the bare view would have."""

    def do_GET(self) -> None:  # noqa: N802 - the handler's API
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def bench_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        SQLITE_PATH=str(tmp_path / "bench.sqlite3"),
        GUNICORN_WORKERS="1",
    )
    return env


def test_a_port_held_by_another_server_stops_the_bench_with_a_clear_message(tmp_path):
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        port = other.server_address[1]
        with pytest.raises(bench.BenchError, match="not the bench's own|port taken"):
            bench.start_server(bench_env(tmp_path), port, token="a1b2c3d4")
    finally:
        other.shutdown()


def test_on_a_free_port_the_bench_finds_its_own_server(tmp_path):
    port = bench.free_port()
    server = bench.start_server(bench_env(tmp_path), port, token="e5f6a7b8")
    try:
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
