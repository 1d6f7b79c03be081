"""What the browser tests share: Debian's Chromium (Playwright's own download is not used), its
flags, and the marks that skip them where it is missing. The ``browser`` and ``artefacts``
fixtures are in conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
BROWSER_MARKS = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)"),
    pytest.mark.asyncio(loop_scope="module"),
]
