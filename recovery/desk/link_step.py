"""The link an agent sends during a call, as a step of the task's journey: named, templated, always allowed.

Pure. ``send-link`` schedules a step ``agent_link_<channel>_<n>`` due now on the journey; the dispatcher
fires it like any flow step (consent, quiet hours, tracked links, attribution) with the ``agent_link``
template, although flows.yaml does not list it.
"""

from __future__ import annotations

import re
from datetime import timedelta

from recovery.rules import FlowStep
from recovery.states import ChannelName

TEMPLATE = "agent_link"
PREFIX = "agent_link_"
LINK_CHANNELS = (ChannelName.SMS, ChannelName.EMAIL)
_NAME = re.compile(rf"^{PREFIX}(sms|email)_(\d+)$")


def link_step_name(channel: ChannelName, number: int) -> str:
    """The ``number``-th link sent on ``channel`` in this journey: ``agent_link_sms_1``."""
    return f"{PREFIX}{channel.value}_{number}"


def is_link_step(name: str) -> bool:
    """True for a step an agent scheduled (not one of flows.yaml)."""
    return _NAME.match(name) is not None


def link_flow_step(name: str) -> FlowStep | None:
    """The step definition the dispatcher fires for an agent's link; ``None`` for any other name."""
    found = _NAME.match(name)
    if found is None:
        return None
    return FlowStep(name=name, after=timedelta(0), channel=ChannelName(found.group(1)), template=TEMPLATE)
