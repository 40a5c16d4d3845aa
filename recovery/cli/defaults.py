"""The default config/ and templates/ a wheel ships, used when the working directory has none.

In a checkout (editable install) they are the repository's own config/ and templates/; in a wheel, setup.py
copies them to ``recovery/default_files/``. ``recovery init DIR`` writes editable copies, as ``alembic init``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from recovery.errors import ConfigError

SHIPPED = ("config", "templates")
_PACKAGED = Path(__file__).resolve().parent.parent / "default_files"
_CHECKOUT = Path(__file__).resolve().parent.parent.parent


def shipped_root() -> Path:
    """The directory holding the shipped config/ and templates/: packaged copy first, else the checkout."""
    for root in (_PACKAGED, _CHECKOUT):
        if all((root / name).is_dir() for name in SHIPPED):
            return root
    raise ConfigError("the default config/ and templates/ are missing from this installation")


def fallback_overrides(config_chosen: bool, cwd: Path | None = None) -> dict[str, Any]:
    """Settings pointing at the shipped flows and templates when no config file is used and the cwd has none.

    With a config file the operator owns the paths; an environment override always wins.
    """
    if config_chosen:
        return {}
    here = cwd or Path.cwd()
    wanted = {"flows_file": Path("config/flows.yaml"), "templates_dir": Path("templates")}
    overrides: dict[str, Any] = {}
    for field, relative in wanted.items():
        if f"RECOVERY_{field.upper()}" in os.environ or (here / relative).exists():
            continue
        overrides[field] = shipped_root() / relative
    return overrides


def write_project(target: Path, *, force: bool = False) -> list[Path]:
    """Copy the shipped config/ and templates/ into ``target``; refuse to overwrite unless ``force``."""
    root = shipped_root()
    existing = [target / name for name in SHIPPED if (target / name).exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise ConfigError(f"{names} already exist(s); pass --force to overwrite")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SHIPPED:
        shutil.copytree(root / name, target / name, dirs_exist_ok=True)
        written.append(target / name)
    return written
