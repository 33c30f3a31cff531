"""A local fake of the Dropbox HTTP API, reached by the official SDK's real HTTPS requests.

The SDK always calls `https://api.dropboxapi.com` and `https://content.dropboxapi.com`. The
`dropbox_fake` fixture points `HTTPS_PROXY` at a local proxy that accepts `CONNECT` to those
two hosts, terminates TLS itself with a certificate from a throwaway CA (trusted through
`REQUESTS_CA_BUNDLE`) and answers the API routes HomeSec uses. So the SDK's own code (URLs,
headers, `Dropbox-API-Arg`, JSON decoding, token refresh, 429 and 401 handling) runs unchanged,
with nothing in the product that knows about tests.

Served: `oauth2/token` (refresh-token grant), `check/user`, `files/get_metadata`,
`files/upload`, `files/upload_session/{start,append_v2,finish}` (offsets checked),
`files/download`, `files/delete_v2`. Uploads check `content_hash` when the SDK sends one;
`add` mode refuses to replace a different file. Scripting: `fail_next(route, status,
retry_after)`, `expire_access_tokens()`, `add_folder()` (an existing folder whose casing
Dropbox keeps).
`requests` records every API call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

API_HOST = "api.dropboxapi.com"
CONTENT_HOST = "content.dropboxapi.com"
APP_KEY, APP_SECRET, REFRESH_TOKEN = "fake-app-key", "fake-app-secret", "fake-refresh-token"
LONG_LIVED_TOKEN = "sl.fake-long-lived-token"
_BLOCK = 4 * 1024 * 1024


def content_hash(data: bytes) -> str:
    """Dropbox's content hash: SHA-256 over the SHA-256 of each 4 MiB block."""
    blocks = (data[i : i + _BLOCK] for i in range(0, len(data), _BLOCK))
    return hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).hexdigest()


@dataclass(frozen=True)
class ApiCall:
    host: str
    route: str
    arg: Any
    body_size: int
    status: int
    authorization: str


@dataclass
class _File:
    path_display: str
    data: bytes
    rev: str


@dataclass
class DropboxFake:
    """The fake's state; every method is safe to call from the test while requests run."""

    token_lifetime_s: int = 14400
    requests: list[ApiCall] = field(default_factory=list)
    files: dict[str, _File] = field(default_factory=dict)
    _folders: dict[str, str] = field(default_factory=dict)
    _sessions: dict[str, bytearray] = field(default_factory=dict)
    _tokens: set[str] = field(default_factory=lambda: {LONG_LIVED_TOKEN})
    _expired: set[str] = field(default_factory=set)
    _failures: dict[str, list[tuple[int, int | None]]] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, route: str, status: int = 429, retry_after: int | None = 1) -> None:
        """The next call to `route` (e.g. "2/files/upload") gets this error status."""
        with self._lock:
            self._failures.setdefault(route, []).append((status, retry_after))

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._expired |= self._tokens - {LONG_LIVED_TOKEN}
            self._tokens &= {LONG_LIVED_TOKEN}

    def add_folder(self, path: str) -> None:
        with self._lock:
            self._folders[path.lower()] = path

    def calls(self, route: str) -> list[ApiCall]:
        return [call for call in self.requests if call.route == route]

    # --- request handling (server threads)

    def handle(self, host: str, route: str, headers: Any, body: bytes) -> _Reply:
        arg = _arg(route, headers, body)
        reply = self._dispatch(host, route, headers, arg, body)
        with self._lock:
            self.requests.append(
                ApiCall(host, route, arg, len(body), reply.status, headers.get("Authorization", ""))
            )
        return reply

    def _dispatch(self, host: str, route: str, headers: Any, arg: Any, body: bytes) -> _Reply:
        with self._lock:
            queued = self._failures.get(route)
            failure = queued.pop(0) if queued else None
        if failure is not None:
            return _error_reply(*failure)
        if route == "oauth2/token" and host == API_HOST:
            return self._token(parse_qs(body.decode()))
        auth = self._check_token(headers.get("Authorization", ""))
        if auth is not None:
            return auth
        handler = _ROUTES.get((host, route))
        if handler is None:
            return _Reply(404, {"error_summary": f"unknown route {host}/{route}"})
        with self._lock:
            return handler(self, arg, body)

    def _token(self, form: dict[str, list[str]]) -> _Reply:
        given = {key: values[0] for key, values in form.items()}
        expected = {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}
        expected |= {"client_id": APP_KEY, "client_secret": APP_SECRET}
        if given != expected:
            return _Reply(400, {"error": "invalid_grant"})
        token = f"sl.fake-{next(self._counter)}"
        with self._lock:
            self._tokens.add(token)
        return _Reply(200, {"access_token": token, "expires_in": self.token_lifetime_s})

    def _check_token(self, authorization: str) -> _Reply | None:
        token = authorization.removeprefix("Bearer ")
        with self._lock:
            if token in self._tokens:
                return None
            tag = "expired_access_token" if token in self._expired else "invalid_access_token"
        return _Reply(401, {"error_summary": f"{tag}/..", "error": {".tag": tag}})

    def _metadata(self, path_lower: str) -> dict[str, Any]:
        stored = self.files[path_lower]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            ".tag": "file",
            "name": stored.path_display.rsplit("/", 1)[-1],
            "id": f"id:{hashlib.sha1(path_lower.encode()).hexdigest()[:16]}",
            "client_modified": now,
            "server_modified": now,
            "rev": stored.rev,
            "size": len(stored.data),
            "path_lower": path_lower,
            "path_display": stored.path_display,
            "content_hash": content_hash(stored.data),
            "is_downloadable": True,
        }

    def _store(self, path: str, mode: Any, data: bytes) -> _Reply:
        tag = mode.get(".tag") if isinstance(mode, dict) else (mode or "add")
        existing = self.files.get(path.lower())
        if tag == "add" and existing is not None and existing.data != data:
            conflict = {".tag": "conflict", "conflict": {".tag": "file"}}
            error = {".tag": "path", "reason": conflict, "upload_session_id": "none"}
            return _Reply(409, {"error_summary": "path/conflict/file/..", "error": error})
        if existing is None or existing.data != data:
            self.files[path.lower()] = _File(
                self._display(path), data, f"{next(self._counter):09x}"
            )
        return _Reply(200, self._metadata(path.lower()))

    def _display(self, path: str) -> str:
        # Dropbox keeps the casing of folders that already exist.
        parts = path.split("/")
        for depth in range(len(parts) - 1, 0, -1):
            known = self._folders.get("/".join(parts[:depth]).lower())
            if known is not None:
                return "/".join([known, *parts[depth:]])
        return path

    def _upload(self, arg: Any, body: bytes) -> _Reply:
        if arg.get("content_hash") not in (None, content_hash(body)):
            return _Reply(400, {"error_summary": "content_hash_mismatch"})
        return self._store(arg["path"], arg.get("mode"), body)

    def _session_start(self, arg: Any, body: bytes) -> _Reply:
        session_id = f"session-{next(self._counter)}"
        self._sessions[session_id] = bytearray(body)
        return _Reply(200, {"session_id": session_id})

    def _session_append(self, arg: Any, body: bytes) -> _Reply:
        bad_offset = self._append(arg["cursor"], body)
        return bad_offset or _Reply(200, None)

    def _session_finish(self, arg: Any, body: bytes) -> _Reply:
        bad_offset = self._append(arg["cursor"], body)
        if bad_offset is not None:
            return bad_offset
        data = bytes(self._sessions.pop(arg["cursor"]["session_id"]))
        return self._store(arg["commit"]["path"], arg["commit"].get("mode"), data)

    def _append(self, cursor: dict[str, Any], body: bytes) -> _Reply | None:
        session = self._sessions.get(cursor["session_id"])
        if session is None:
            error: dict[str, Any] = {".tag": "not_found"}
            return _Reply(409, {"error_summary": "not_found/..", "error": error})
        if cursor["offset"] != len(session):
            error = {".tag": "incorrect_offset", "correct_offset": len(session)}
            return _Reply(409, {"error_summary": "incorrect_offset/..", "error": error})
        session.extend(body)
        return None

    def _get_metadata(self, arg: Any, body: bytes) -> _Reply:
        if arg["path"].lower() not in self.files:
            return _not_found()
        return _Reply(200, self._metadata(arg["path"].lower()))

    def _download(self, arg: Any, body: bytes) -> _Reply:
        path = arg["path"].lower()
        if path not in self.files:
            return _not_found()
        return _Reply(200, self._metadata(path), payload=self.files[path].data)

    def _delete(self, arg: Any, body: bytes) -> _Reply:
        path = arg["path"].lower()
        if path not in self.files:
            error = {".tag": "path_lookup", "path_lookup": {".tag": "not_found"}}
            return _Reply(409, {"error_summary": "path_lookup/not_found/..", "error": error})
        metadata = self._metadata(path)
        del self.files[path]
        return _Reply(200, {"metadata": metadata})

    def _check_user(self, arg: Any, body: bytes) -> _Reply:
        return _Reply(200, {"result": arg.get("query", "")})


_ROUTES = {
    (API_HOST, "2/check/user"): DropboxFake._check_user,
    (API_HOST, "2/files/get_metadata"): DropboxFake._get_metadata,
    (API_HOST, "2/files/delete_v2"): DropboxFake._delete,
    (CONTENT_HOST, "2/files/upload"): DropboxFake._upload,
    (CONTENT_HOST, "2/files/upload_session/start"): DropboxFake._session_start,
    (CONTENT_HOST, "2/files/upload_session/append_v2"): DropboxFake._session_append,
    (CONTENT_HOST, "2/files/upload_session/finish"): DropboxFake._session_finish,
    (CONTENT_HOST, "2/files/download"): DropboxFake._download,
}


@dataclass(frozen=True)
class _Reply:
    status: int
    result: Any
    payload: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _arg(route: str, headers: Any, body: bytes) -> Any:
    if "Dropbox-API-Arg" in headers:
        return json.loads(headers["Dropbox-API-Arg"])
    if route.startswith("2/") and body:
        return json.loads(body)
    return {}


def _not_found() -> _Reply:
    error = {".tag": "path", "path": {".tag": "not_found"}}
    return _Reply(409, {"error_summary": "path/not_found/..", "error": error})


def _error_reply(status: int, retry_after: int | None) -> _Reply:
    if status == 429:
        error = {"reason": {".tag": "too_many_requests"}, "retry_after": retry_after or 1}
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return _Reply(429, {"error_summary": "too_many_requests/..", "error": error}, None, headers)
    return _Reply(status, {"error_summary": f"status {status}"})


class _ApiHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 inside the TLS tunnel: the Dropbox API routes."""

    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Proxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host = (self.headers.get("Host") or "").split(":")[0]
        reply = self.server.fake.handle(host, self.path.lstrip("/"), self.headers, body)
        if reply.payload is not None:
            content, content_type = reply.payload, "application/octet-stream"
        else:
            content, content_type = json.dumps(reply.result).encode(), "application/json"
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        if reply.payload is not None:
            self.send_header("Dropbox-API-Result", json.dumps(reply.result))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ConnectHandler(socketserver.BaseRequestHandler):
    """The proxy side: accept `CONNECT` to the Dropbox hosts, then speak TLS as them."""

    server: _Proxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT" or target.split(":")[0] not in (API_HOST, CONTENT_HOST):
            self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        try:
            tls = self.server.tls.wrap_socket(self.request, server_side=True)
            _ApiHandler(tls, self.client_address, self.server)
        except (OSError, ssl.SSLError):
            return


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: DropboxFake, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _ConnectHandler)
        self.fake = fake
        self.tls = tls


def _write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for the two Dropbox API hosts; (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HomeSec test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, API_HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(API_HOST), x509.DNSName(CONTENT_HOST)]), False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture(scope="session")
def _dropbox_certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _write_certificates(tmp_path_factory.mktemp("dropbox-tls"))


@pytest.fixture
def dropbox_fake(
    monkeypatch: pytest.MonkeyPatch, _dropbox_certificates: tuple[Path, Path, Path]
) -> Iterator[DropboxFake]:
    """A fresh fake Dropbox; the env vars DROPBOX_APP_KEY, DROPBOX_APP_SECRET,
    DROPBOX_REFRESH_TOKEN and DROPBOX_TOKEN (long-lived) hold credentials it accepts."""
    ca, cert, key = _dropbox_certificates
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    fake = DropboxFake()
    proxy = _Proxy(fake, tls)
    thread = threading.Thread(
        target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, name="dropbox-fake", daemon=True
    )
    thread.start()
    host, port = proxy.server_address[:2]
    assert isinstance(host, str)
    monkeypatch.setenv("HTTPS_PROXY", f"http://{host}:{port}")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    for name in ("NO_PROXY", "no_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DROPBOX_APP_KEY", APP_KEY)
    monkeypatch.setenv("DROPBOX_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("DROPBOX_REFRESH_TOKEN", REFRESH_TOKEN)
    monkeypatch.setenv("DROPBOX_TOKEN", LONG_LIVED_TOKEN)
    try:
        yield fake
    finally:
        proxy.shutdown()
        proxy.server_close()
