"""Ships the repository's editable defaults (config/, templates/) inside the wheel, without a copy in git."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
SHIPPED = ("config", "templates")  # read by recovery.defaults as recovery/default_files/<name>


class BuildWithDefaults(build_py):
    """build_py, plus config/ and templates/ copied to recovery/default_files/ in the build tree."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "recovery" / "default_files"
        for name in SHIPPED:
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithDefaults})
