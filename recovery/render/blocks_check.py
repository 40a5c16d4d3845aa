"""Text outside the blocks of a template that extends a layout is never shown (neither in the preview nor
in the message): the check refuses it, naming its line; pure over the parsed template."""

from __future__ import annotations

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

# Nodes whose content is not output where they stand: blocks go into the layout, the rest defines names.
_NOT_OUTPUT = (nodes.Block, nodes.Extends, nodes.Macro, nodes.Import, nodes.FromImport, nodes.Assign)


def outside_blocks(environment: Environment, source: str) -> list[tuple[int, str]]:
    """``(line, excerpt)`` of each piece of text or ``{{ … }}`` outside the blocks of an extending template."""
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError:
        return []  # reported by the compile check, at its own line
    if not any(isinstance(node, nodes.Extends) for node in tree.body):
        return []
    found = []
    for node in tree.body:
        if isinstance(node, _NOT_OUTPUT):
            continue
        for output in [node] if isinstance(node, nodes.Output) else node.find_all(nodes.Output):
            for piece in output.nodes:
                if isinstance(piece, nodes.TemplateData):
                    if not piece.data.strip():
                        continue
                    leading = piece.data[: len(piece.data) - len(piece.data.lstrip())]
                    found.append((piece.lineno + leading.count("\n"), piece.data.strip()[:60]))
                else:
                    found.append((piece.lineno, "{{ … }}"))
    return found
