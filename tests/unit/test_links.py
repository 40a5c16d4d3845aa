"""Signed click and unsubscribe links: round trips, tampering, wrong secret, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recovery.clock import ManualClock
from recovery.errors import ConfigError, RecoveryError
from recovery.render.signed_links import InvalidLink, LinkSigner, TrackedLink, UnsubscribeToken

START = datetime(2025, 11, 25, 12, tzinfo=UTC)
TARGET = "https://shop.example/cart/restore/7f3a?src=reminder&x=é"


def signer(secret: str = "s3cret", clock: ManualClock | None = None) -> LinkSigner:
    return LinkSigner(secret, "https://recovery.example/", clock=clock or ManualClock(START))


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_tracked_url_round_trips_message_and_target() -> None:
    """The token in ``/r/{token}`` gives back the message id and the exact target."""
    url = signer().tracked_url("journey-1:reminder", TARGET)
    assert url.startswith("https://recovery.example/r/")
    link = signer().read_click(token_of(url), max_age=timedelta(days=30))
    assert link == TrackedLink(message_id="journey-1:reminder", target=TARGET)


def test_unsubscribe_url_round_trips_customer_and_channel() -> None:
    """The token in ``/u/{token}`` gives back who unsubscribes from what."""
    url = signer().unsubscribe_url("customer-42", "sms")
    assert url.startswith("https://recovery.example/u/")
    assert signer().read_unsubscribe(token_of(url)) == UnsubscribeToken(customer_key="customer-42", channel="sms")


def test_altered_token_is_invalid() -> None:
    """Changing one character of the payload breaks the signature."""
    token = token_of(signer().tracked_url("m", TARGET))
    altered = ("A" if token[1] != "A" else "B").join([token[:1], token[2:]])
    with pytest.raises(InvalidLink):
        signer().read_click(altered, max_age=timedelta(days=30))


def test_token_signed_with_another_secret_is_invalid() -> None:
    """A token forged with a guessed secret is refused."""
    token = token_of(signer("other").tracked_url("m", TARGET))
    with pytest.raises(InvalidLink, match="invalid"):
        signer().read_click(token, max_age=timedelta(days=30))


def test_garbage_token_is_invalid() -> None:
    """Random text is an invalid link, never a crash."""
    with pytest.raises(InvalidLink):
        signer().read_click("not-a-token", max_age=timedelta(days=30))


@pytest.mark.parametrize(("age", "valid"), [(timedelta(days=29), True), (timedelta(days=30, seconds=1), False)])
def test_click_token_expires_after_max_age(age: timedelta, valid: bool) -> None:
    """A link is followed until ``max_age`` after it was signed, then refused as expired."""
    clock = ManualClock(START)
    links = signer(clock=clock)
    token = token_of(links.tracked_url("m", TARGET))
    clock.advance(age)
    if valid:
        assert links.read_click(token, max_age=timedelta(days=30)).target == TARGET
    else:
        with pytest.raises(InvalidLink, match="expired"):
            links.read_click(token, max_age=timedelta(days=30))


def test_unsubscribe_token_never_expires() -> None:
    """Opting out keeps working years later."""
    clock = ManualClock(START)
    links = signer(clock=clock)
    token = token_of(links.unsubscribe_url("c", "email"))
    clock.advance(timedelta(days=3650))
    assert links.read_unsubscribe(token).customer_key == "c"


def test_click_token_is_not_an_unsubscribe_token() -> None:
    """Each purpose has its own salt: a click token cannot unsubscribe anyone, nor the reverse."""
    links = signer()
    with pytest.raises(InvalidLink):
        links.read_unsubscribe(token_of(links.tracked_url("m", TARGET)))
    with pytest.raises(InvalidLink):
        links.read_click(token_of(links.unsubscribe_url("c", "sms")), max_age=timedelta(days=1))


@pytest.mark.parametrize("target", ["javascript:alert(1)", "data:text/html,hi", "//evil.example", "ftp://x"])
def test_only_web_targets_can_be_tracked(target: str) -> None:
    """The redirector only ever sends a shopper to an http(s) page."""
    with pytest.raises(InvalidLink):
        signer().tracked_url("m", target)


def test_empty_secret_is_a_configuration_error() -> None:
    """Signing with no secret is refused at start-up."""
    with pytest.raises(ConfigError, match="link_secret"):
        LinkSigner("", "https://recovery.example")


def test_invalid_link_derives_from_recovery_error() -> None:
    """Callers catch one root exception."""
    assert issubclass(InvalidLink, RecoveryError)


ROTATED_AT = START + timedelta(days=1)


def rotated(clock: ManualClock, *, until: datetime | None = ROTATED_AT + timedelta(days=30)) -> LinkSigner:
    return LinkSigner(
        "new-secret", "https://recovery.example/", clock=clock, previous_secret="old-secret", previous_until=until
    )


@pytest.mark.parametrize("days_after_rotation", [0, 29])
def test_links_signed_with_the_previous_secret_work_during_the_grace_period(days_after_rotation: int) -> None:
    clock = ManualClock(START)
    old = signer("old-secret", clock=clock)
    click, unsubscribe = old.tracked_url("m1", "https://shop.example/cart"), old.unsubscribe_url("c1", "email")
    clock.advance(ROTATED_AT - START + timedelta(days=days_after_rotation))
    new = rotated(clock)
    assert new.read_click(click.rsplit("/", 1)[1], timedelta(days=60)).message_id == "m1"
    assert new.read_unsubscribe(unsubscribe.rsplit("/", 1)[1]).customer_key == "c1"


def test_links_signed_with_the_previous_secret_stop_working_after_the_grace_period() -> None:
    clock = ManualClock(START)
    click = signer("old-secret", clock=clock).tracked_url("m1", "https://shop.example/cart")
    clock.advance(ROTATED_AT - START + timedelta(days=31))
    with pytest.raises(InvalidLink, match="signature"):
        rotated(clock).read_click(click.rsplit("/", 1)[1], timedelta(days=60))


def test_after_rotation_new_links_are_signed_with_the_new_secret_only() -> None:
    clock = ManualClock(START)
    click = rotated(clock, until=None).tracked_url("m1", "https://shop.example/cart")
    assert signer("new-secret", clock=clock).read_click(click.rsplit("/", 1)[1], timedelta(days=1)).message_id == "m1"
    with pytest.raises(InvalidLink):
        signer("old-secret", clock=clock).read_click(click.rsplit("/", 1)[1], timedelta(days=1))


def test_an_expired_link_is_not_rescued_by_the_previous_secret() -> None:
    clock = ManualClock(START)
    click = signer("old-secret", clock=clock).tracked_url("m1", "https://shop.example/cart")
    clock.advance(timedelta(days=3))
    with pytest.raises(InvalidLink, match="expired"):
        rotated(clock, until=None).read_click(click.rsplit("/", 1)[1], timedelta(days=1))
