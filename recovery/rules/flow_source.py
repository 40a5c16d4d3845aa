"""One flow's YAML cut out of the flows file (version 0 of a flow), comments and all; pure."""

from __future__ import annotations

import textwrap

import yaml


def flow_sources(text: str) -> dict[str, str]:
    """``{name: source}`` for every flow of a flows file; a source is the mapping under ``flows:``."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return {}
    lines = text.splitlines()
    found: dict[str, str] = {}
    for key, value in root.value:
        if key.value != "flows" or not isinstance(value, yaml.SequenceNode):
            continue
        for item in value.value:
            name = _name_of(item)
            if name is None:
                continue
            start, end = item.start_mark, item.end_mark
            # A block mapping ends where the next item's "- " starts: that line is not part of it.
            ends_before = end.line >= len(lines) or lines[end.line][: end.column].strip() in ("", "-")
            chunk = lines[start.line : end.line if ends_before else end.line + 1]
            if chunk:
                # The first line starts after "- ": keep its indentation so the mapping stays aligned.
                chunk[0] = " " * start.column + chunk[0][start.column :]
            found[name] = textwrap.dedent("\n".join(chunk)).strip("\n") + "\n"
    return found


def _name_of(node: yaml.Node) -> str | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if key.value == "name" and isinstance(value, yaml.ScalarNode):
            return str(value.value)
    return None
