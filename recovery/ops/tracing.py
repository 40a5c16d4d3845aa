"""Optional OpenTelemetry traces: off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (and the [otel] extra installed).

HTTP requests (the ASGI middleware), Kafka batches (a consumer span each) and one span per provider send
(its channel and outcome, never an address) are exported by OTLP over HTTP; the standard ``OTEL_*``
variables (service name, headers, sampler) apply.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

_state = {"on": False}


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the operator asked for traces (an OTLP endpoint is configured)."""
    env = os.environ if environ is None else environ
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def setup_tracing() -> bool:
    """Install the OTLP exporter once per process when wanted; False (and one warning) without the extra."""
    if _state["on"] or not wanted():
        return _state["on"]
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the [otel] extra is not installed: no traces")
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "cart-recovery")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint and headers from OTEL_*
    trace.set_tracer_provider(provider)
    _state["on"] = True
    log.info("tracing to %s", os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "the OTLP traces endpoint"))
    return True


def asgi_middleware() -> Any | None:
    """The ASGI middleware class for ``app.add_middleware`` when tracing is on."""
    if not _state["on"]:
        return None
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware


@contextlib.contextmanager
def batch_span(records: Sequence[Any]) -> Iterator[None]:
    """A consumer span around one batch of input records (its size and topics; never a payload)."""
    if not _state["on"]:
        yield
        return
    from opentelemetry import trace

    topics = sorted({record.topic for record in records})
    attributes: dict[str, str | int] = {"messaging.system": "kafka", "messaging.batch.message_count": len(records)}
    with trace.get_tracer("recovery.ingest").start_as_current_span(
        f"{','.join(topics)} process", kind=trace.SpanKind.CONSUMER, attributes=attributes
    ):
        yield


@contextlib.contextmanager
def send_span(channel: str) -> Iterator[dict[str, str]]:
    """A span around one provider send; the caller fills ``outcome`` in the yielded dict."""
    facts = {"outcome": "error"}
    if not _state["on"]:
        yield facts
        return
    from opentelemetry import trace

    with trace.get_tracer("recovery.channels").start_as_current_span(
        f"send {channel}", attributes={"recovery.channel": channel}
    ) as span:
        try:
            yield facts
        finally:
            span.set_attribute("recovery.outcome", facts["outcome"])
