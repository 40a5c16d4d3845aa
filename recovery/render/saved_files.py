"""Template files that exist only as saved versions (a variant's new template, a new language such as
``it/``): indexed like files once every part their channel needs is there; pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from recovery.render.files import _FILE_NAME, LOCALE_DIR, REQUIRED_PARTS, TemplateFile, file_channel


def message_file(templates_dir: Path, path: str) -> TemplateFile | None:
    """The template file a path like ``it/cart_reminder.email.html`` names; ``None`` for anything else."""
    locale, _, name = path.partition("/")
    match = _FILE_NAME.fullmatch(name)
    if not LOCALE_DIR.fullmatch(locale) or match is None:
        return None
    channel = file_channel(match["channel"])
    return TemplateFile(
        name=match["name"], channel=channel, part=match["part"], locale=locale, path=templates_dir / path
    )


def with_saved_files(
    templates_dir: Path, files: Iterable[TemplateFile], sources: Mapping[str, str]
) -> tuple[list[TemplateFile], list[str]]:
    """``files`` plus the saved-only ones of complete templates; and a note for each still-incomplete one."""
    found = list(files)
    known = {file.loader_name for file in found}
    saved_only = [f for f in (message_file(templates_dir, p) for p in sources if p not in known) if f is not None]
    by_group: dict[tuple[str, str, str], list[TemplateFile]] = {}
    for file in saved_only:
        by_group.setdefault((file.locale, file.name, file.channel), []).append(file)
    parts_on_disk: dict[tuple[str, str, str], set[str]] = {}
    for file in found:
        parts_on_disk.setdefault((file.locale, file.name, file.channel), set()).add(file.part)
    pending = []
    for key, new in sorted(by_group.items()):
        parts = parts_on_disk.get(key, set()) | {file.part for file in new}
        missing = [part for part in REQUIRED_PARTS[key[2]] if part not in parts]
        if missing:
            locale, name, channel = key
            pending.append(
                f"{locale}/{name}.{channel}: not sent yet, it still needs its {', '.join(missing)} part"
                f" ({', '.join(f'{locale}/{name}.{channel}.{part}' for part in missing)})"
            )
        else:
            found.extend(new)
    return found, pending
