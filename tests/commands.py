"""Running the ``recovery`` command in a subprocess, as an operator would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK_SECRET = "test-link-secret-at-least-32-characters-long"


async def recovery(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the ``recovery`` command as an operator would, configured by environment only."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RECOVERY_")}
    env |= {
        "RECOVERY_DATABASE__URL": database_url,
        "RECOVERY_SECURITY__LINK_SECRET": LINK_SECRET,
        "RECOVERY_FLOWS_FILE": str(ROOT / "config" / "flows.yaml"),
        "RECOVERY_TEMPLATES_DIR": str(ROOT / "templates"),
        # The default flows send SMS: a configured operator has Twilio settings (nothing is sent here).
        "RECOVERY_CHANNELS__SMS__ACCOUNT_SID": "AC" + "0" * 32,
        "RECOVERY_CHANNELS__SMS__AUTH_TOKEN": "test-token",
        "RECOVERY_CHANNELS__SMS__SENDER": "+33700000000",
        # The shop the messages speak for: run refuses email in the name of a store id (stores.md).
        "RECOVERY_STORES__DEFAULT__NAME": "Maison Dupont",
        "RECOVERY_STORES__DEFAULT__ADDRESS": "12 rue des Lilas, 75011 Paris, France",
        "COLUMNS": "200",
    }
    argv = [sys.executable, "-m", "recovery.cli.main", *args]
    return await asyncio.to_thread(
        subprocess.run, argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=90, check=False
    )
