"""Kafka over TLS and SASL (SCRAM, PLAIN, mTLS): the real broker behind a TLS + SASL front door.

The front door is first checked with an independent client (librdkafka, through confluent-kafka), so a
fault there is not mistaken for the service's. The test's own reads and writes go through librdkafka too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from recovery.app.service import Service
from recovery.app.wiring import build_channels, build_composer
from recovery.settings import Settings
from tests.fakes.kafka_front_door import FrontDoor, make_certificates, server_context
from tests.harness import FAST_FLOWS, cart, customer, event, eventually, service_settings

pytestmark = pytest.mark.kafka

USER, PASSWORD = "shop-recovery", "pw-Zq8v3-never-printed"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@asynccontextmanager
async def front_door(
    certs: dict[str, Path], tmp: Path, *, sasl: bool = True, mtls: bool = False
) -> AsyncIterator[FrontDoor]:
    door = FrontDoor(
        server_context(certs, require_client_certificate=mtls),
        username=USER if sasl else None,
        password=PASSWORD if sasl else None,
        log_path=tmp / "tansu.log",
    )
    await door.start()
    try:
        yield door
    finally:
        await door.stop()


def librdkafka(door: FrontDoor, certs: dict[str, Path], mechanism: str, password: str = PASSWORD) -> dict[str, Any]:
    return {
        "bootstrap.servers": door.bootstrap_servers,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": mechanism,
        "sasl.username": USER,
        "sasl.password": password,
        "ssl.ca.location": str(certs["ca.pem"]),
        "message.timeout.ms": 8000,
    }


def produce(config: dict[str, Any], topic: str, *records: tuple[str, bytes]) -> list[Any]:
    """Send with librdkafka; the delivery errors (None each when delivered)."""
    producer = Producer(config)
    errors: list[Any] = []
    for key, value in records:
        producer.produce(topic, value, key=key.encode(), on_delivery=lambda error, _msg: errors.append(error))
    producer.flush(15)
    return errors


def read_all(config: dict[str, Any], topic: str, want: int, timeout: float = 20) -> list[bytes]:
    """Read a topic from the start with librdkafka (assigned partitions: its groups hang on tansu)."""
    settings = {key: value for key, value in config.items() if key != "message.timeout.ms"}
    consumer = Consumer({**settings, "group.id": f"check-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    found: list[bytes] = []
    try:
        for _ in range(int(timeout * 5)):
            message = consumer.poll(0.2)
            value = message.value() if message is not None and message.error() is None else None
            if value:
                found.append(value)
            if len(found) >= want:
                break
    finally:
        consumer.close()
    return found


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_the_front_door_serves_librdkafka_and_refuses_a_wrong_password(
    certificates: dict[str, Path], tmp_path: Path, mechanism: str
) -> None:
    """An independent client (librdkafka) produces through TLS + SASL; the same client with a wrong password cannot."""
    async with front_door(certificates, tmp_path) as door:
        good = librdkafka(door, certificates, mechanism)
        assert await asyncio.to_thread(produce, good, "front-door-check", ("k", b"hello")) == [None]
        assert await asyncio.to_thread(read_all, good, "front-door-check", 1) == [b"hello"]
        bad = {**librdkafka(door, certificates, mechanism, password="wrong"), "message.timeout.ms": 2000}
        (error,) = await asyncio.to_thread(produce, bad, "front-door-check", ("k", b"no"))
        assert error is not None and door.rejected > 0


def secured(settings: Settings, door: FrontDoor, security: dict[str, Any]) -> Settings:
    kafka = settings.kafka.model_dump() | {"bootstrap_servers": door.bootstrap_servers, "security": security}
    return Settings(**(settings.model_dump() | {"kafka": kafka}))


@asynccontextmanager
async def service_running(settings: Settings, *, wait_started: bool = True) -> AsyncIterator[Service]:
    service = Service(settings, channels=build_channels(settings), composer=build_composer(settings))
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, started=started))
    try:
        if wait_started:
            await asyncio.wait_for(started.wait(), 60)
        else:
            await eventually(lambda: service.http_port is not None or task.done(), timeout=30)
            assert not task.done(), task.exception()
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def base_settings(tmp_path: Path) -> Settings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return service_settings(
        bootstrap="unused", database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite", workdir=tmp_path, flows=FAST_FLOWS
    )


async def test_the_service_consumes_and_publishes_through_tls_and_scram(
    certificates: dict[str, Path], tmp_path: Path
) -> None:
    """SASL_SSL with SCRAM-SHA-512: an event sent by librdkafka is consumed, its email goes out, the outbox
    relay publishes the journey's events; every client (admin, consumer, producer) went through the door."""
    async with front_door(certificates, tmp_path) as door:
        security = {
            "protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "username": USER,
            "password": PASSWORD,
            "ca_file": str(certificates["ca.pem"]),
        }
        settings = secured(base_settings(tmp_path), door, security)
        async with service_running(settings) as service:
            config = librdkafka(door, certificates, "SCRAM-SHA-512")
            cart_event = event("cart.updated", "cart-tls", customer=customer(email=True), cart=cart())
            topic = settings.kafka.topics.cart.name
            sent = await asyncio.to_thread(produce, config, topic, ("cart-tls", json.dumps(cart_event).encode()))
            assert sent == [None]
            outbox = settings.channels.outbox_dir / "email.jsonl"
            await eventually(lambda: outbox.exists() and "cart-tls" in outbox.read_text(encoding="utf-8"), timeout=30)
            published = await asyncio.to_thread(read_all, config, settings.kafka.topics.messages.name, 1)
            assert published and all(json.loads(raw)["cart_id"] == "cart-tls" for raw in published)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http:
                assert (await http.get("/readyz")).status_code == 200
        assert door.rejected == 0 and door.accepted >= 3


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ({"password": "not-the-password"}, "SASL authentication failed for user 'shop-recovery'"),
        ({"ca_file": "other-ca.pem"}, "certificate is not trusted"),
    ],
)
async def test_bad_credentials_or_an_untrusted_broker_leave_http_up_and_readyz_naming_the_cause(
    certificates: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, change: dict[str, str], cause: str
) -> None:
    """The service keeps HTTP up, /readyz answers 503 naming the cause, it logs the cause once while retrying,
    and neither the password it was given nor the real one appears in any answer or log line."""
    caplog.set_level(logging.INFO)
    async with front_door(certificates, tmp_path) as door:
        security = {
            "protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-256",
            "username": USER,
            "password": PASSWORD,
            "ca_file": str(certificates["ca.pem"]),
        }
        if "ca_file" in change:
            security["ca_file"] = str(certificates[change["ca_file"]])
        else:
            security |= change
        settings = secured(base_settings(tmp_path), door, security)
        async with (
            service_running(settings, wait_started=False) as service,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http,
        ):
            assert (await http.get("/healthz")).status_code == 200

            async def names_the_cause() -> bool:
                answer = await http.get("/readyz")
                return answer.status_code == 503 and cause in answer.text

            await eventually(names_the_cause, timeout=30)
            await asyncio.sleep(3)  # several retries with backoff
            answer = await http.get("/readyz")
            assert answer.status_code == 503 and cause in answer.json()["checks"]["service"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert sum(cause in record.getMessage() for record in caplog.records) == 1, logged
    for secret in (PASSWORD, "not-the-password"):
        assert secret not in logged and secret not in answer.text and secret not in repr(settings)


async def test_mutual_tls_with_a_client_certificate(certificates: dict[str, Path], tmp_path: Path) -> None:
    """SSL with a client certificate (Strimzi's mTLS listener): the service starts and is ready; without the
    certificate the door refuses it and /readyz says why."""
    async with front_door(certificates, tmp_path, sasl=False, mtls=True) as door:
        security = {
            "protocol": "SSL",
            "ca_file": str(certificates["ca.pem"]),
            "cert_file": str(certificates["client.pem"]),
            "key_file": str(certificates["client.key"]),
        }
        settings = secured(base_settings(tmp_path), door, security)
        async with (
            service_running(settings) as service,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http,
        ):
            assert (await http.get("/readyz")).status_code == 200
        bare = secured(base_settings(tmp_path / "bare"), door, {"protocol": "SSL", "ca_file": security["ca_file"]})
        async with (
            service_running(bare, wait_started=False) as service,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http,
        ):
            await eventually(lambda: _unready(http), timeout=30)


async def _unready(http: httpx.AsyncClient) -> bool:
    answer = await http.get("/readyz")
    return answer.status_code == 503 and "waiting for the broker" in answer.text
