"""Optional OpenTelemetry: traces reach an OTLP endpoint when one is configured, and a send span names no address."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.ops import tracing
from recovery.ops.instruments import TimedChannel
from recovery.ops.metrics import ServiceMetrics
from recovery.states import ChannelName

RECOVERY = Path(sys.executable).parent / "recovery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A minimal OTLP/HTTP receiver: records each POST's path and body, answers 200."""
    received: list[tuple[str, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_http_requests_are_traced_to_the_otlp_endpoint(
    collector: tuple[str, list[tuple[str, bytes]]], tmp_path: Path
) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, `recovery run --role api` exports a span for GET /healthz."""
    endpoint, received = collector
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RECOVERY_", "OTEL_"))} | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "RECOVERY_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/t.db",
        "RECOVERY_SECURITY__LINK_SECRET": "tracing-test-secret-" + "x" * 32,
        "RECOVERY_KAFKA__BOOTSTRAP_SERVERS": "kafka.invalid:9092",
        "RECOVERY_HTTP__PORT": str(port),
        "RECOVERY_CHANNELS__TRANSPORT": "outbox",
    }
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen([str(RECOVERY), "run", "--role", "api"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "run.log").read_text(encoding="utf-8")[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        while not any(b"/healthz" in body for _, body in received) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
    assert any(path == "/v1/traces" and b"/healthz" in body for path, body in received), received[:3]


class Refusing:
    """A channel whose provider refuses the message for good."""

    name = ChannelName.SMS

    async def send(self, message: OutgoingMessage) -> Delivery:
        from recovery.errors import PermanentError

        raise PermanentError("invalid number", code="21211")

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        return None

    async def aclose(self) -> None:
        pass


async def test_a_send_span_carries_channel_and_outcome_and_no_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """One span per send: `send sms`, channel and outcome attributes; the phone number appears nowhere."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client import CollectorRegistry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer", lambda name, *a, **k: provider.get_tracer(name))
    monkeypatch.setitem(tracing._state, "on", True)
    channel = TimedChannel(Refusing(), ServiceMetrics(CollectorRegistry()))
    message = OutgoingMessage(
        message_id="j1:offer",
        journey_id="j1",
        cart_id="c1",
        flow="f",
        step="offer",
        channel=ChannelName.SMS,
        to="+33612345678",
        text="Votre panier",
    )
    with pytest.raises(Exception, match="invalid number"):
        await channel.send(message)
    (span,) = exporter.get_finished_spans()
    assert span.name == "send sms"
    assert dict(span.attributes or {}) == {"recovery.channel": "sms", "recovery.outcome": "permanent"}
    assert "+33612345678" not in repr(span.to_json())


def test_a_batch_span_names_its_topics_and_size_and_never_a_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    """One consumer span per ingest batch: its topics and record count; no key, value or address of a record."""
    from aiokafka.structs import ConsumerRecord
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer", lambda name, *a, **k: provider.get_tracer(name))
    monkeypatch.setitem(tracing._state, "on", True)
    value = b'{"customer": {"email": "claire@example.com"}}'
    records = [
        ConsumerRecord(topic, 0, offset, 0, 0, b"cart-42", value, None, 7, len(value), [])
        for offset, topic in enumerate(["orders", "cart-events", "cart-events"])
    ]
    with tracing.batch_span(records):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "cart-events,orders process"
    assert span.kind == trace.SpanKind.CONSUMER
    assert dict(span.attributes or {}) == {"messaging.system": "kafka", "messaging.batch.message_count": 3}
    assert "claire@example.com" not in span.to_json() and "cart-42" not in span.to_json()


def test_tracing_is_off_without_an_endpoint() -> None:
    """No OTEL_EXPORTER_OTLP_ENDPOINT: nothing is set up, no middleware, no Kafka middleware."""
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
