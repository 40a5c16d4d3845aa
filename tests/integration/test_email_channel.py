"""The email channel against a real SMTP server (aiosmtpd on a local port)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from recovery.channels.base import OutgoingMessage
from recovery.channels.email import EmailChannel, EmailConfig, make_message_id
from recovery.channels.retry import send_with_retry
from recovery.errors import OutcomeUnknownError, PermanentError, TransientError
from recovery.states import ChannelName
from tests.fakes import SmtpSink, Stage, free_port

MESSAGE = OutgoingMessage(
    message_id="journey-1:reminder",
    journey_id="journey-1",
    cart_id="cart-1",
    flow="abandoned_cart",
    step="reminder",
    channel=ChannelName.EMAIL,
    to="ada@example.org",
    subject="Votre panier vous attend — 10 % offerts",
    text="Bonjour Ada, votre panier est prêt : https://shop.example/r/abc",
    html="<p>Bonjour Ada, votre panier est <strong>prêt</strong>.</p>",
    unsubscribe_url="https://shop.example/u/abc",
    locale="fr",
)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A started recording SMTP server (same as ``tests.fakes.fixtures.smtp_sink``)."""
    with SmtpSink() as sink:
        yield sink


def config_for(sink: SmtpSink, **overrides: Any) -> EmailConfig:
    """An EmailConfig pointing at ``sink``, with short timeouts."""
    config = EmailConfig(
        host=sink.host,
        port=sink.port,
        sender="Boutique <shop@shop.example>",
        timeout_s=2.0,
        message_id_domain="mail.shop.example",
    )
    return replace(config, **overrides)


async def test_an_email_reaches_the_smtp_server_with_text_and_html_parts(smtp_sink: SmtpSink) -> None:
    """The envelope, headers and both alternatives arrive intact, French accents included."""
    channel = EmailChannel(config_for(smtp_sink))
    delivery = await channel.send(MESSAGE)
    await channel.aclose()

    [received] = smtp_sink.received
    assert received.mail_from == "shop@shop.example"
    assert received.rcpt_tos == ("ada@example.org",)
    email = received.message
    assert email["Subject"] == MESSAGE.subject
    assert email["From"] == "Boutique <shop@shop.example>"
    assert email["Content-Language"] == "fr"
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(preferencelist=("plain",))
    html = email.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert text.get_content().strip() == MESSAGE.text
    assert "<strong>prêt</strong>" in html.get_content()
    assert delivery.provider_id == email["Message-ID"]
    assert delivery.detail["smtp_code"] == 250


async def test_a_text_only_message_is_sent_as_a_single_part(smtp_sink: SmtpSink) -> None:
    """Without HTML there is no multipart wrapper."""
    await EmailChannel(config_for(smtp_sink)).send(replace(MESSAGE, html=None))
    assert smtp_sink.received[0].message.get_content_type() == "text/plain"


async def test_an_internationalised_address_is_sent_with_smtputf8(smtp_sink: SmtpSink) -> None:
    """A non-ASCII mailbox needs the server's SMTPUTF8 extension, which the sink offers."""
    await EmailChannel(config_for(smtp_sink)).send(replace(MESSAGE, to="josé@exemple.fr"))
    [received] = smtp_sink.received
    assert received.rcpt_tos == ("josé@exemple.fr",)
    assert received.message["To"] == "josé@exemple.fr"


async def test_an_email_without_subject_is_refused_before_connecting() -> None:
    """A template bug is permanent: no SMTP server is even contacted."""
    config = EmailConfig(host="127.0.0.1", port=free_port(), sender="shop@shop.example")
    with pytest.raises(PermanentError) as caught:
        await EmailChannel(config).send(replace(MESSAGE, subject=None))
    assert caught.value.code == "no-subject"


async def test_the_message_id_is_stable_for_the_same_idempotency_key(smtp_sink: SmtpSink) -> None:
    """A resend after a crash carries the same Message-ID, so receivers can drop the duplicate."""
    channel = EmailChannel(config_for(smtp_sink))
    await channel.send(MESSAGE)
    await channel.send(MESSAGE)
    await channel.send(replace(MESSAGE, message_id="journey-1:second"))

    ids = [received.message["Message-ID"] for received in smtp_sink.received]
    assert ids[0] == ids[1] == make_message_id("journey-1:reminder", "mail.shop.example")
    assert ids[2] != ids[0]
    assert ids[0].endswith("@mail.shop.example>")


async def test_unsubscribe_headers_allow_one_click_unsubscribe(smtp_sink: SmtpSink) -> None:
    """RFC 8058: an HTTPS List-Unsubscribe target (plus mailto) and the One-Click POST marker."""
    channel = EmailChannel(config_for(smtp_sink, unsubscribe_mailto="unsubscribe@shop.example"))
    await channel.send(MESSAGE)
    await channel.send(replace(MESSAGE, unsubscribe_url=None))

    with_link, without_link = (received.message for received in smtp_sink.received)
    # Long header values are folded at 78 columns; unfolding may leave the fold's leading space.
    targets = with_link["List-Unsubscribe"].strip()
    assert targets == "<https://shop.example/u/abc>, <mailto:unsubscribe@shop.example>"
    assert with_link["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert without_link["List-Unsubscribe"].strip() == "<mailto:unsubscribe@shop.example>"
    assert without_link["List-Unsubscribe-Post"] is None


async def test_a_long_unsubscribe_link_stays_a_plain_url_in_the_raw_header(smtp_sink: SmtpSink) -> None:
    """Real signed links are longer than 78 columns: RFC 2369 wants ``<url>``, never an encoded-word."""
    url = "http://127.0.0.1:18080/u/WyJjdXN0LXYxIiwiZW1haWwiXQ.awvzXg.sQybuhLZiE0TeWS8eryHpquvUsk"
    await EmailChannel(config_for(smtp_sink)).send(replace(MESSAGE, unsubscribe_url=url))

    raw = smtp_sink.received[0].raw.decode("ascii")
    headers = re.sub(r"\r?\n[ \t]", " ", raw.partition("\r\n\r\n")[0])  # unfold, as a mail client does
    assert f"List-Unsubscribe: <{url}>" in headers.splitlines()
    assert "=?" not in headers.partition("List-Unsubscribe:")[2].splitlines()[0]


@pytest.mark.parametrize("stage", [Stage.MAIL, Stage.RCPT, Stage.DATA])
async def test_an_smtp_4xx_reply_is_a_transient_error(smtp_sink: SmtpSink, stage: Stage) -> None:
    """451 means "try again later" whatever the command it answers."""
    smtp_sink.fail_next("451 4.3.0 Try again later", stage=stage)
    with pytest.raises(TransientError) as caught:
        await EmailChannel(config_for(smtp_sink)).send(MESSAGE)
    assert caught.value.code == "smtp-451"
    assert smtp_sink.received == []


@pytest.mark.parametrize("stage", [Stage.RCPT, Stage.DATA])
async def test_an_smtp_5xx_reply_is_a_permanent_error_with_the_smtp_code(smtp_sink: SmtpSink, stage: Stage) -> None:
    """550 (no such mailbox, policy refusal) is never retried."""
    smtp_sink.fail_next("550 5.1.1 No such user", stage=stage)
    with pytest.raises(PermanentError) as caught:
        await EmailChannel(config_for(smtp_sink)).send(MESSAGE)
    assert caught.value.code == "smtp-550"


async def test_a_server_that_is_down_is_a_transient_error() -> None:
    """A refused connection sent nothing, so it may be retried."""
    config = EmailConfig(host="127.0.0.1", port=free_port(), sender="shop@shop.example", timeout_s=1.0)
    with pytest.raises(TransientError) as caught:
        await EmailChannel(config).send(MESSAGE)
    assert caught.value.code == "smtp-connect"


async def test_no_reply_to_data_is_an_outcome_unknown_error(smtp_sink: SmtpSink) -> None:
    """The server may have queued the message: the sender must reconcile, not conclude "not sent"."""
    smtp_sink.data_delay_s = 1.0
    with pytest.raises(OutcomeUnknownError):
        await EmailChannel(config_for(smtp_sink, timeout_s=0.3)).send(MESSAGE)
    assert len(smtp_sink.received) == 1


async def test_send_with_retry_gets_past_a_temporary_refusal_and_delivers_once(smtp_sink: SmtpSink) -> None:
    """Two 451s then success: one message arrives after three attempts."""
    smtp_sink.fail_next("451 4.7.1 Greylisted", count=2, stage=Stage.RCPT)
    channel = EmailChannel(config_for(smtp_sink))
    delivery = await send_with_retry(channel, MESSAGE, attempts=3, base_wait_s=0.01, max_wait_s=0.05)
    assert delivery.provider_id is not None
    assert len(smtp_sink.received) == 1


async def test_lookup_cannot_tell_and_returns_none(smtp_sink: SmtpSink) -> None:
    """SMTP has no lookup; resending is safe thanks to the stable Message-ID."""
    assert await EmailChannel(config_for(smtp_sink)).lookup(MESSAGE) is None


async def test_login_is_used_when_credentials_are_configured() -> None:
    """AUTH with the configured user succeeds; a wrong password is refused for good (535)."""
    with SmtpSink(username="relay", password="s3cret") as sink:
        await EmailChannel(config_for(sink, username="relay", password="s3cret")).send(MESSAGE)
        assert len(sink.received) == 1
        with pytest.raises(PermanentError) as caught:
            await EmailChannel(config_for(sink, username="relay", password="wrong")).send(MESSAGE)
        assert caught.value.code == "smtp-535"


@pytest.fixture
def tls_cert(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A throwaway self-signed certificate for 127.0.0.1 (cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    yield str(cert), str(key)


async def test_starttls_then_login_when_the_server_requires_them(tls_cert: tuple[str, str]) -> None:
    """The channel upgrades the connection before AUTH and verifies the server's certificate."""
    cert, _ = tls_cert
    with SmtpSink(username="relay", password="s3cret", tls_cert=tls_cert) as sink:
        secure = config_for(sink, starttls=True, username="relay", password="s3cret", cert_bundle=cert)
        await EmailChannel(secure).send(MESSAGE)
        assert len(sink.received) == 1
        with pytest.raises(TransientError):
            # Without STARTTLS this server offers no AUTH: a configuration problem, not the message's.
            await EmailChannel(replace(secure, starttls=False)).send(MESSAGE)
        assert len(sink.received) == 1
