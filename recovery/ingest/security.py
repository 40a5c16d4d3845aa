"""Kafka TLS and SASL for every client the service opens, from ``kafka.security.*``.

One FastStream security object is built from the settings; the FastStream broker takes it as is, and the raw
aiokafka clients (producer, admin, the diagnosis probe) get the same arguments through FastStream's own
``parse_security``, so the subscriber and the producers can never disagree on TLS or credentials.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from recovery.errors import ConfigError
from recovery.settings import KafkaSecuritySettings

DIAGNOSE_TIMEOUT_S = 10.0
_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def ssl_context(security: KafkaSecuritySettings) -> ssl.SSLContext | None:
    """The TLS context for ``SSL`` / ``SASL_SSL`` (the CA file, else the system CAs; the client certificate)."""
    if not security.protocol.endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(cafile=str(security.ca_file) if security.ca_file else None)
        if security.cert_file:
            key = str(security.key_file) if security.key_file else None
            context.load_cert_chain(str(security.cert_file), key)
    except (OSError, ssl.SSLError) as exc:
        # Names the file and the key, never its content.
        raise ConfigError(f"kafka.security: cannot load the TLS files: {exc}") from exc
    return context


def faststream_security(security: KafkaSecuritySettings) -> BaseSecurity | None:
    """The FastStream security object for ``KafkaBroker(security=...)`` (None: PLAINTEXT)."""
    if security.protocol == "PLAINTEXT":
        return None
    context = ssl_context(security)
    if not security.protocol.startswith("SASL_"):
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if not security.username or security.password is None:
        raise ConfigError(
            f"kafka.security.protocol {security.protocol} needs kafka.security.username and password "
            "(env RECOVERY_KAFKA__SECURITY__USERNAME, RECOVERY_KAFKA__SECURITY__PASSWORD)"
        )
    sasl = _SASL[security.sasl_mechanism]
    return sasl(
        security.username,
        security.password.get_secret_value(),
        ssl_context=context,
        use_ssl=security.protocol == "SASL_SSL",
    )


def client_options(security: KafkaSecuritySettings) -> dict[str, Any]:
    """Keyword arguments for raw aiokafka clients (producer, admin), the same as the FastStream broker's."""
    return parse_security(faststream_security(security))


def describe(security: KafkaSecuritySettings) -> str:
    """How the service talks to Kafka, for the start-up log: protocol, mechanism and user, never the password."""
    if security.protocol == "PLAINTEXT":
        return "PLAINTEXT"
    parts: list[str] = [security.protocol]
    if security.protocol.startswith("SASL_"):
        parts.append(f"{security.sasl_mechanism} as {security.username!r}")
    if security.protocol.endswith("SSL"):
        parts.append(f"CA {security.ca_file or 'system'}" + (", client certificate" if security.cert_file else ""))
    return " ".join(parts)


async def diagnose(bootstrap_servers: str, security: KafkaSecuritySettings) -> str | None:
    """Why the first bootstrap server cannot be used, in words (None: it accepts this client).

    aiokafka only says "Unable to bootstrap"; one direct connection with the same TLS and SASL arguments
    tells a refused connection from an untrusted certificate or rejected credentials.
    """
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    options = client_options(security)
    try:
        conn = await asyncio.wait_for(
            create_conn(
                host or "localhost",
                int(port or 9092),
                ssl_context=options.get("ssl_context"),
                security_protocol=options.get("security_protocol", "PLAINTEXT"),
                sasl_mechanism=options.get("sasl_mechanism", "PLAIN"),
                sasl_plain_username=options.get("sasl_plain_username"),
                sasl_plain_password=options.get("sasl_plain_password"),
            ),
            DIAGNOSE_TIMEOUT_S,
        )
    except Exception as exc:
        return explain(exc, security)
    conn.close()
    return None


def explain(exc: BaseException, security: KafkaSecuritySettings) -> str:
    """A connection failure in an operator's words, naming the setting to look at; no secret in it."""
    chain = _chain(exc)
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            return (
                f"TLS: the broker's certificate is not trusted ({error.verify_message}); check kafka.security.ca_file"
            )
        if isinstance(error, ssl.SSLError):
            reason = error.reason or type(error).__name__
            return f"TLS handshake failed ({reason}); check kafka.security.protocol and the TLS files"
    for error in chain:
        name = type(error).__name__
        if "Authentication" in name or "SaslAuthentication" in name or "IllegalSaslState" in name:
            return (
                f"SASL authentication failed for user {security.username!r} ({security.sasl_mechanism}); "
                "check kafka.security.username and password"
            )
        if "UnsupportedSaslMechanism" in name:
            mechanism = security.sasl_mechanism
            return f"the broker does not accept SASL mechanism {mechanism}; check kafka.security.sasl_mechanism"
    first = chain[0]
    if isinstance(first, (TimeoutError, asyncio.TimeoutError)):
        return "no answer from the broker in time (a TLS or SASL mismatch with the listener, or the network)"
    if isinstance(first, (OSError, KafkaError)):
        return f"cannot connect: {type(first).__name__}: {_first_line(first)}"
    return f"{type(first).__name__}: {_first_line(first)}"


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:200]
