"""`zfrepro fetch-weights` against a local HTTP server on 127.0.0.1 (nothing leaves the machine): the right file is
kept under its name, a wrong checksum, a truncated download and a refused connection each give one line and leave
no file in the cache."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socket
import threading
import zipfile

import pytest

from zfrepro.cli import main as cli_main
from zfrepro.model import published as registry

PAYLOAD = b"weights of a zfnet, as bytes" * 1000


def zipped(name: str, data: bytes) -> bytes:
    """An imgclsmob-style release: the .pth inside a .zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(name, data)
    return buf.getvalue()


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[bytes, int | None]] = {}  # path -> (body, Content-Length to announce)

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, length = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def entry(monkeypatch):
    """zfnet's entry with the test payload's SHA-1 as the published one."""
    real = registry.PUBLISHED["zfnet"]
    fake = dataclasses.replace(real, checksum=hashlib.sha1(PAYLOAD).hexdigest())
    monkeypatch.setitem(registry.PUBLISHED, "zfnet", fake)
    return fake


def fetch(url, cache, capsys):
    rc = cli_main(["fetch-weights", "zfnet", "--cache-dir", str(cache), "--url", url, "--timeout", "10"])
    return rc, capsys.readouterr()


def test_right_checksum_is_kept_under_its_name(server, entry, tmp_path, capsys):
    Handler.routes = {"/zfnet.zip": (zipped(entry.file_name, PAYLOAD), None)}
    rc, out = fetch(f"{server}/zfnet.zip", tmp_path, capsys)
    assert rc == 0 and out.out.strip() == str(tmp_path / entry.file_name)
    assert (tmp_path / entry.file_name).read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == [entry.file_name]  # no temporary left behind
    Handler.routes = {}  # a second call finds the verified file and downloads nothing
    assert fetch(f"{server}/zfnet.zip", tmp_path, capsys)[0] == 0


def test_wrong_checksum_is_one_line_and_not_kept(server, entry, tmp_path, capsys):
    Handler.routes = {"/zfnet.zip": (zipped(entry.file_name, PAYLOAD + b"!"), None)}
    rc, out = fetch(f"{server}/zfnet.zip", tmp_path, capsys)
    assert rc == 2 and out.err.count("\n") == 1
    assert f"not the published {entry.checksum}" in out.err and entry.file_name in out.err
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_is_one_line(server, entry, tmp_path, capsys):
    body = zipped(entry.file_name, PAYLOAD)
    Handler.routes = {"/zfnet.zip": (body[: len(body) // 2], len(body))}
    rc, out = fetch(f"{server}/zfnet.zip", tmp_path, capsys)
    assert rc == 2 and out.err.count("\n") == 1 and "stopped early" in out.err
    assert list(tmp_path.iterdir()) == []


def test_no_network_is_one_line(entry, tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on: bound, never listening, so connecting is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        rc, out = fetch(f"http://127.0.0.1:{port}/zfnet.zip", tmp_path, capsys)
    assert rc == 2 and out.err.count("\n") == 1 and "cannot be reached" in out.err and "refused" in out.err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_name_lists_the_known_ones(tmp_path, capsys):
    assert cli_main(["fetch-weights", "vgg16", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "zfnet" in err and "torchvision-alexnet" in err
