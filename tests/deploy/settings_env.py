"""Loads modelux's settings from the environment a deployment file gives the process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelux_server.config import Settings, load_settings


def load_with_environment(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cwd: Path) -> Settings:
    """The settings `modelux` would read with exactly these MODELUX_ variables set.

    Run from an empty directory, so no `.env` file adds anything.
    """
    for name in list(os.environ):
        if name.startswith("MODELUX_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("MODELUX_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(cwd)
    return load_settings()
