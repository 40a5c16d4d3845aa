"""A marketer's test send: every step of a flow rendered against a sample cart and sent now to their own
address, marked ``[TEST]``; no journey, message row or event is written, so the figures never count it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recovery.channels.base import Channel, OutgoingMessage
from recovery.errors import ConfigError, PermanentError, TransientError
from recovery.render.files import TemplateError
from recovery.render.samples import Sample, load_samples
from recovery.render.templates import Templates
from recovery.rules.flows import Flow, FlowStep, Trigger
from recovery.states import ChannelName

log = logging.getLogger(__name__)

TEST_MARK = "[TEST]"


@dataclass(frozen=True, kw_only=True)
class TestSent:
    """What happened to one step (or one variant) of a test send."""

    step: str
    variant: str | None
    channel: str
    outcome: str  # sent | skipped (no address, or a direct call) | failed: <reason>


def sample_for(samples: list[Sample], trigger: Trigger) -> Sample:
    """A sample cart that fits the flow: a failed payment for a payment flow, else an abandoned cart."""
    if not samples:
        raise ConfigError("no sample cart to render a test send with")
    payment = trigger == Trigger.PAYMENT_FAILED
    fitting = [s for s in samples if ("payment" in s.context) == payment]
    return (fitting or samples)[0]


def _context(sample: Sample, step: FlowStep, now_iso: str) -> dict[str, Any]:
    context = dict(sample.context)
    if step.offer is not None:
        context["offer"] = {
            "code": "TEST-CODE",
            "percent": step.offer.percent or 0,
            "free_shipping": step.offer.free_shipping,
            "expires_at": now_iso,
        }
    return context


async def send_tests(
    flow: Flow,
    templates: Templates,
    channels: Mapping[ChannelName, Channel],
    *,
    email: str | None,
    phone: str | None,
    now_iso: str,
) -> list[TestSent]:
    """Send each step (each variant of a split step) whose channel has an address given; report every one."""
    sample = sample_for(load_samples(templates.templates_dir / "samples"), flow.trigger)
    outcomes = []
    for step in flow.steps:
        by = ChannelName.EMAIL if step.channel == ChannelName.EMAIL else ChannelName.SMS
        address = email if by == ChannelName.EMAIL else phone
        choices: list[tuple[str | None, str | None]] = [(v.name, v.template) for v in step.variants or []]
        choices = choices or [(None, step.template)]
        for variant, template in choices:
            if not address or template is None or (step.channel == ChannelName.CALLBACK and step.mode == "direct"):
                outcomes.append(TestSent(step=step.name, variant=variant, channel=by.value, outcome="skipped"))
                continue
            outcome = await _send_one(flow, step, variant, template, by, address, sample, templates, channels, now_iso)
            outcomes.append(TestSent(step=step.name, variant=variant, channel=by.value, outcome=outcome))
    return outcomes


async def _send_one(
    flow: Flow,
    step: FlowStep,
    variant: str | None,
    template: str,
    by: ChannelName,
    address: str,
    sample: Sample,
    templates: Templates,
    channels: Mapping[ChannelName, Channel],
    now_iso: str,
) -> str:
    try:
        rendered = templates.render(
            template,
            channel="email" if by == ChannelName.EMAIL else "sms",
            locale=sample.customer_locale,
            store_locale=sample.store_locale,
            context=_context(sample, step, now_iso),
            track=lambda target: target,  # a test is not tracked: its clicks must not reach the figures
        )
    except TemplateError as exc:
        return f"failed: {exc}"
    test_id = f"test-{uuid.uuid4().hex[:16]}"
    outgoing = OutgoingMessage(
        message_id=test_id,
        journey_id=test_id,
        cart_id="test",
        flow=flow.name,
        step=step.name,
        channel=by,
        to=address,
        subject=f"{TEST_MARK} {rendered.subject}" if rendered.subject else None,
        text=f"{TEST_MARK} {rendered.text}",
        html=rendered.html,
        locale=sample.customer_locale or "en",
        variant=variant,
    )
    try:
        await channels[by].send(outgoing)
    except (PermanentError, TransientError) as exc:
        log.warning("test send failed", extra={"flow": flow.name, "step": step.name, "error": type(exc).__name__})
        return f"failed: {exc}"
    return "sent"
