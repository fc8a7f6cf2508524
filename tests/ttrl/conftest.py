"""Shared helpers of the TTRL tests."""

import pytest

from pixelis_verl.tools.media import MediaLimits
from pixelis_verl.ttrl.stream import RecordLimits


@pytest.fixture
def limits_for():
    """RecordLimits for a data root: the tools' default media budget (conf/tools/pixel_tools.yaml), overridable."""

    def make(root, **overrides) -> RecordLimits:
        media = MediaLimits(str(root), 50_000_000, 150_000_000, 108_000, 921_600)
        return RecordLimits(media, **overrides)

    return make
