"""Per-trajectory tool state: masks a later call can name, and which images show which video frame.

verl creates a tool instance per call, so anything one call leaves for a later one (a `mask_id` from
`segment_object_at` that `get_properties` or `track_object` reads; the frame a returned image shows)
lives here, keyed on `agent_data.request_id`. Every trajectory of an agent-loop worker runs in that
worker's process, so a process-wide store sees all of a trajectory's calls. `PixelisToolAgentLoop`
releases a trajectory's state when the trajectory ends; the store also keeps at most
`MAX_TRAJECTORIES`, dropping the least recently used, so a caller that never releases (a test, a
crashed loop) cannot grow it without bound.
"""

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pixelis_verl.ops.zoom import PixelBox
from pixelis_verl.tools.arguments import ToolArgumentError, show_value

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN"))

MAX_TRAJECTORIES = 4096  # far above the trajectories one worker has in flight (batch x n / workers)


@dataclass
class StoredMask:
    image_index: int  # the image the mask was made on
    box: PixelBox  # in source pixels of that image
    crop: np.ndarray  # bool mask inside `box`: memory scales with the object, not the image
    source_size: tuple[int, int]  # (width, height) of the image's source

    def full(self) -> np.ndarray:
        """The mask at the source's full size."""
        mask = np.zeros((self.source_size[1], self.source_size[0]), dtype=bool)
        x1, y1, x2, y2 = self.box
        mask[y1:y2, x1:x2] = self.crop
        return mask


@dataclass
class TrajectoryState:
    masks: dict[str, StoredMask] = field(default_factory=dict)
    # id() of each image a tool returned that shows a video frame -> (the image, the frame index). verl appends
    # returned images to agent_data.image_data after the whole turn, in call order, so a call cannot know the
    # index its images will get; the image objects themselves are what later calls find in image_data.
    frame_images: dict[int, tuple[Any, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # calls of one turn run concurrently

    def add_mask(self, mask: StoredMask, max_masks: int) -> str:
        """Store `mask` under the next id (m1, m2, ...); the oldest is dropped beyond `max_masks`."""
        with self.lock:
            number = 1 + max((int(k[1:]) for k in self.masks), default=0)
            mask_id = f"m{number}"
            self.masks[mask_id] = mask
            while len(self.masks) > max_masks:
                self.masks.pop(next(iter(self.masks)))
            return mask_id

    def lookup_mask(self, tool: str, value: Any) -> tuple[str, StoredMask]:
        """The stored mask a model-given id names; "m2", " m2 ", 2 and "2" all name m2."""
        text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
        mask_id = text if text.startswith("m") else f"m{text}"
        if mask_id not in self.masks:
            known = ", ".join(self.masks) if self.masks else "none yet; call segment_object_at first"
            raise ToolArgumentError(f"{tool}: unknown mask_id {show_value(value)}; known mask ids: {known}")
        return mask_id, self.masks[mask_id]

    def add_frame_images(self, images: list[Any], frames: list[int]) -> None:
        with self.lock:
            for image, frame in zip(images, frames, strict=True):
                self.frame_images[id(image)] = (image, frame)

    def frame_of(self, image: Any) -> int | None:
        entry = self.frame_images.get(id(image))
        return entry[1] if entry is not None and entry[0] is image else None


class TrajectoryStore:
    def __init__(self, max_trajectories: int = MAX_TRAJECTORIES):
        self._states: OrderedDict[str, TrajectoryState] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_trajectories

    def get(self, request_id: str) -> TrajectoryState:
        with self._lock:
            state = self._states.get(request_id)
            if state is None:
                state = self._states[request_id] = TrajectoryState()
                if len(self._states) > self._max:
                    dropped, _ = self._states.popitem(last=False)
                    logger.warning("tool state of request %s dropped: over %d open trajectories", dropped, self._max)
            else:
                self._states.move_to_end(request_id)
            return state

    def release(self, request_id: str) -> None:
        with self._lock:
            self._states.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._states


STORE = TrajectoryStore()  # one per process: each agent-loop worker has its own


def release_trajectory(request_id: str) -> None:
    """Free everything the tools kept for `request_id`; called when its trajectory ends."""
    STORE.release(request_id)
