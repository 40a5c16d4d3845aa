"""One ``/metrics`` page for the workers of ``recovery run --role consumer --workers N`` (PURE).

Worker 0 serves the page: its own families, with the series each worker keeps for itself (``per_worker``:
its events, its dead letters, its partitions' lag) joined with the other workers' samples. Counters and
histograms are summed per label set, so the page reads as one process's would; a gauge is taken from the
worker that reports it (partitions are owned by one worker: ``max`` only decides during a rebalance); a
``_created`` timestamp is the earliest. Every other family (the database's gauges, HTTP, the configuration
in use) is worker 0's alone: the others would only repeat it, or count worker 0's own scrapes of them.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Sequence

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

# The sample names of a family, by its type (the text format splits ``_created`` into a family of its own).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
}

LabelKey = tuple[str, tuple[tuple[str, str], ...]]


def merge_families(
    own: Iterable[Metric], others: Sequence[Iterable[Metric]], per_worker: Collection[str]
) -> list[Metric]:
    """``own`` families with the ``per_worker`` ones joined with the other workers' samples."""
    theirs = [sample for families in others for family in families for sample in family.samples]
    merged = []
    for family in own:
        if family.name not in per_worker:
            merged.append(family)
            continue
        names = {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
        joined = copy.copy(family)
        joined.samples = _combine(family, [*family.samples, *(s for s in theirs if s.name in names)])
        merged.append(joined)
    return merged


def _combine(family: Metric, samples: Sequence[Sample]) -> list[Sample]:
    """One sample per (name, labels), in the order first seen: own series first, then the others' new ones."""
    grouped: dict[LabelKey, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault((sample.name, tuple(sorted(sample.labels.items()))), []).append(sample)
    created = family.name + "_created"
    out = []
    for (name, _labels), group in grouped.items():
        values = [sample.value for sample in group]
        if family.type == "gauge":
            value = max(values)
        elif name == created:
            value = min(values)
        else:
            value = sum(values)
        out.append(group[0]._replace(value=value))
    return out
