"""Shared helpers of the TTRL tests."""

from pathlib import Path

import pytest

from pixelis_verl.tools.media import tool_media_limits
from pixelis_verl.ttrl.stream import RecordLimits

TOOL_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "tools" / "pixel_tools.yaml"


@pytest.fixture
def limits_for():
    """RecordLimits for a data root: the shipped tool config's media budget, the record limits overridable."""

    def make(root, **overrides) -> RecordLimits:
        return RecordLimits(tool_media_limits(TOOL_CONFIG, str(root)), **overrides)

    return make
