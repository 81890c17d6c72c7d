"""Where lvcg keeps things on a user's machine.

platformdirs gives the per-OS defaults; ``LVCG_HOME`` (user data: trained weights) and
``LVCG_CACHE_DIR`` (prepared data sets) override them, and explicit settings
(``--paths.home``, ``--paths.cache_dir``) override both.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "lvcg"


def home_dir(override: Path | None = None) -> Path:
    """User data folder: trained weights and anything the user placed by hand."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("LVCG_HOME"):
        return Path(os.environ["LVCG_HOME"]).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir(override: Path | None = None) -> Path:
    """Cache folder: prepared (packed) data sets and embedding caches; safe to delete."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("LVCG_CACHE_DIR"):
        return Path(os.environ["LVCG_CACHE_DIR"]).expanduser()
    if os.environ.get("LVCG_HOME"):
        return Path(os.environ["LVCG_HOME"]).expanduser() / "cache"
    return Path(platformdirs.user_cache_dir(APP_NAME))


def prepared_dir(name: str, override: Path | None = None) -> Path:
    """Folder of one prepared data set inside the cache."""
    return cache_dir(override) / "prepared" / name


def weights_dir(override: Path | None = None) -> Path:
    """Folder for user-trained or hand-downloaded weights."""
    return home_dir(override) / "weights"
