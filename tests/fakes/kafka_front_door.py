"""A TLS + SASL front door for the bundled broker, which cannot serve TLS or keep SCRAM users itself.

It terminates TLS (optionally requiring a client certificate), answers the Kafka SASL exchange itself
(SaslHandshake v0/v1, then SaslAuthenticate v0-v2 or v0's bare tokens) for PLAIN, SCRAM-SHA-256 and
SCRAM-SHA-512 (server side by ``scramp``), and then copies bytes both ways to tansu. ApiVersions before the
handshake is forwarded. tansu is started with its advertised listener set to this door's port, so the
metadata every client receives points back here, never at tansu's own port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from scramp import ScramException, ScramMechanism

from recovery.ingest.embedded_broker import free_port, tansu_binary

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED = 33, 34, 58
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class AuthFailed(Exception):
    """The client's credentials were rejected."""


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _put_uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


class _Exchange:
    """One connection's SASL exchange for the configured user."""

    def __init__(self, username: str, password: str, mechanism: str) -> None:
        self.mechanism = mechanism
        self._username, self._password = username, password
        self.done = False
        self.failed = False
        self.raw_tokens = False  # SaslHandshake v0: bare length-prefixed tokens, no SaslAuthenticate
        self._scram = None
        self._step = 0
        if mechanism.startswith("SCRAM"):
            scram = ScramMechanism(mechanism)
            info: tuple[bytes, bytes, bytes, int] = scram.make_auth_info(password, iteration_count=4096)

            def lookup(user: str) -> tuple[bytes, bytes, bytes, int]:
                if user != username:
                    raise ScramException("unknown user")
                return info

            self._scram = scram.make_server(lookup)

    def step(self, token: bytes) -> bytes:
        """The server's answer to one client token; ``AuthFailed`` on bad credentials."""
        if self._scram is None:
            parts = token.split(b"\0")
            if len(parts) != 3 or parts[1].decode() != self._username or parts[2].decode() != self._password:
                raise AuthFailed("Authentication failed: Invalid username or password")
            self.done = True
            return b""
        try:
            if self._step == 0:
                self._scram.set_client_first(token.decode())
                self._step = 1
                server_first: str = self._scram.get_server_first()
                return server_first.encode()
            self._scram.set_client_final(token.decode())
            self.done = True
            server_final: str = self._scram.get_server_final()
            return server_final.encode()
        except ScramException as exc:
            message = f"Authentication failed due to invalid credentials with SASL mechanism {self.mechanism}"
            raise AuthFailed(message) from exc


@dataclass
class FrontDoor:
    """tansu on a private port behind ``127.0.0.1:port`` with TLS (``tls``) and SASL (``username``)."""

    tls: ssl.SSLContext | None
    username: str | None = None
    password: str | None = None
    log_path: Path | None = None
    port: int = field(default_factory=free_port)
    upstream: int = field(default_factory=free_port)
    accepted: int = 0
    rejected: int = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _launch_broker(self) -> None:
        url = f"tcp://127.0.0.1:{self.upstream}"
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self._tansu = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        if not isinstance(log, int):
            log.close()  # the child holds its own handle

    async def start(self) -> None:
        """Start tansu (advertising this door's port) and listen."""
        self._launch_broker()
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.upstream)
                writer.close()
                break
            await asyncio.sleep(0.05)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)

    async def stop(self) -> None:
        self._server.close()
        self._tansu.terminate()
        self._tansu.wait(timeout=10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            if self.username is not None and not await self._authenticate(reader, writer, up_reader, up_writer):
                self.rejected += 1
                return
            self.accepted += 1
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            for each in (writer, up_writer):
                with contextlib.suppress(Exception):
                    each.close()

    async def _authenticate(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        """Run the SASL exchange; True once authenticated (False: the connection is to be closed)."""
        exchange: _Exchange | None = None
        while True:
            frame = await _read_frame(reader)
            if exchange is not None and exchange.raw_tokens:
                try:
                    answer = exchange.step(frame)
                except AuthFailed:
                    return False
                writer.write(struct.pack(">i", len(answer)) + answer)
                await writer.drain()
                if exchange.done:
                    return True
                continue
            api_key, version, correlation = struct.unpack(">hhi", frame[:8])
            (client_len,) = struct.unpack(">h", frame[8:10])
            at = 10 + max(client_len, 0)
            if api_key == API_VERSIONS:
                up_writer.write(struct.pack(">i", len(frame)) + frame)
                await up_writer.drain()
                answer = await _read_frame(up_reader)
                writer.write(struct.pack(">i", len(answer)) + answer)
                await writer.drain()
            elif api_key == SASL_HANDSHAKE:
                (length,) = struct.unpack(">h", frame[at : at + 2])
                mechanism = frame[at + 2 : at + 2 + length].decode()
                known = mechanism in MECHANISMS
                body = struct.pack(">h", 0 if known else UNSUPPORTED_SASL_MECHANISM)
                body += struct.pack(">i", len(MECHANISMS)) + b"".join(_string(m) for m in MECHANISMS)
                await _answer(writer, correlation, body)
                if not known:
                    return False
                exchange = _Exchange(self.username or "", self.password or "", mechanism)
                exchange.raw_tokens = version == 0
            elif api_key == SASL_AUTHENTICATE and exchange is not None:
                if await self._authenticate_step(writer, frame, at, version, correlation, exchange):
                    return True
                if exchange.failed:
                    return False
            else:
                await _answer(writer, correlation, struct.pack(">h", ILLEGAL_SASL_STATE))
                return False

    async def _authenticate_step(
        self, writer: asyncio.StreamWriter, frame: bytes, at: int, version: int, correlation: int, exchange: _Exchange
    ) -> bool:
        flexible = version >= 2
        if flexible:
            _tags, at = _uvarint(frame, at)
            length, at = _uvarint(frame, at)
            token = frame[at : at + length - 1]
        else:
            (length,) = struct.unpack(">i", frame[at : at + 4])
            token = frame[at + 4 : at + 4 + length]
        error, message, answer = 0, None, b""
        try:
            answer = exchange.step(token)
        except AuthFailed as exc:
            error, message = SASL_AUTHENTICATION_FAILED, str(exc)
            exchange.failed = True
        if flexible:
            text = b"\0" if message is None else _put_uvarint(len(message.encode()) + 1) + message.encode()
            body = struct.pack(">h", error) + text + _put_uvarint(len(answer) + 1) + answer
            body += struct.pack(">q", 0) + b"\0"
            await _answer(writer, correlation, body, header_tags=True)
        else:
            body = struct.pack(">h", error) + _string(message) + struct.pack(">i", len(answer)) + answer
            if version >= 1:
                body += struct.pack(">q", 0)
            await _answer(writer, correlation, body)
        return exchange.done


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


async def _answer(writer: asyncio.StreamWriter, correlation: int, body: bytes, *, header_tags: bool = False) -> None:
    header = struct.pack(">i", correlation) + (b"\0" if header_tags else b"")
    writer.write(struct.pack(">i", len(header) + len(body)) + header + body)
    await writer.drain()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an unrelated CA (openssl)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    for ca in ("ca", "other-ca"):
        openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{ca}.key",
            "-out",
            f"{ca}.pem",
            "-days",
            "2",
            "-subj",
            f"/CN=test {ca}",
        )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    for name in ("server", "client"):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        )
    return {
        name: directory / name
        for name in ("ca.pem", "other-ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    }


def server_context(files: dict[str, Path], *, require_client_certificate: bool = False) -> ssl.SSLContext:
    """The front door's TLS: the server certificate, and the CA client certificates must chain to (mTLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files["server.pem"], files["server.key"])
    if require_client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(files["ca.pem"])
    return context
