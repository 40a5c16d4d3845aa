"""A/B splits: which variant a journey gets at a step; pure, stable, by a hash (never a coin per message)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from recovery.rules.flows import FlowStep, Variant

_SCALE = 2**64


def assign_variant(journey_id: str, step: str, variants: Sequence[Variant]) -> Variant:
    """The variant of ``variants`` for (``journey_id``, ``step``): the same answer on every replay and retry."""
    if not variants:
        raise ValueError("no variants to choose from")
    digest = hashlib.sha256(f"{journey_id}|{step}".encode()).digest()
    # A uniform point in [0, total): the first 8 bytes of the hash, scaled to the weights' sum.
    point = int.from_bytes(digest[:8], "big") / _SCALE * sum(variant.weight for variant in variants)
    running = 0.0
    for variant in variants:
        running += variant.weight
        if point < running:
            return variant
    return variants[-1]  # rounding at the very top of the range


def resolve_step(journey_id: str, step: FlowStep) -> tuple[FlowStep, str | None]:
    """The step as this journey sends it (a split step with its variant's template) and the variant's name."""
    if not step.variants:
        return step, None
    variant = assign_variant(journey_id, step.name, step.variants)
    return step.with_template(variant.template), variant.name
