"""The demo's marketer saves an A/B split of the first reminder (as through the studio), so the report and
the dashboard show per-variant figures with their intervals."""

from __future__ import annotations

from typing import Any

import yaml
from rich.console import Console

from recovery.clock import Clock
from recovery.errors import RecoveryError
from recovery.rules.flow_desk import FlowDesk
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

FLOW, STEP = "abandoned_cart", "reminder"
VARIANTS = [
    {"name": "classic", "weight": 50, "template": "cart_reminder"},
    {"name": "shipping_info", "weight": 50, "template": "cart_offer"},
]


def with_split(source: str) -> str | None:
    """The flow's source with its reminder split in two variants; ``None`` when it has no such step."""
    data: Any = yaml.safe_load(source)
    for step in data.get("steps") or []:
        if step.get("name") == STEP and step.get("channel") == "email":
            step.pop("template", None)
            step["variants"] = VARIANTS
            return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return None


async def save_demo_split(settings: Settings, clock: Clock, console: Console) -> None:
    """Save the split as version 1 of the flow, through the same check as the flows API."""
    engine = create_engine(settings.database.url)
    try:
        await upgrade_to_head(engine)
        desk = FlowDesk(engine=engine, settings=settings, clock=clock)
        try:
            source = with_split((await desk.read(FLOW))["source"])
            if source is None:
                return
            version = await desk.save(FLOW, source, "demo marketer", "demo: A/B split of the first reminder")
        except RecoveryError as exc:
            console.print(f"(no A/B split in this demo: {exc})")
            return
        names = " / ".join(str(v["name"]) for v in VARIANTS)
        console.print(f"A marketer split the first reminder of {FLOW} ({names}, 50/50): flow version {version}")
    finally:
        await engine.dispose()
