"""The `ttrl:` block of a recipe as dataclasses; a wrong key or value fails at startup naming it.

`conf/ttrl/default.yaml` documents every knob and its default; these classes are the single source of truth
for what the keys are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.ttrl.corridor import CorridorConfig
from pixelis_verl.ttrl.vote import VoteConfig
from pixelis_verl.typed_config import RecipeError, from_dict


@dataclass(frozen=True)
class StreamConfig:
    path: str | None = None  # a JSONL file or a folder of JSONL files; required
    follow: bool = False  # keep polling for new records; false: stop once the source has nothing new
    poll_seconds: float = 2.0
    pattern: str = "*.jsonl"  # files read from a folder, in name order
    max_requests: int | None = None  # stop after serving this many (this run); None: no limit
    max_line_bytes: int = 16 << 20  # a longer record is dead-lettered unread (inline data URIs count)
    max_images: int = 8  # images per record
    max_record_pixels: int = 50_000_000  # decoded pixels per record, all its images together


@dataclass(frozen=True)
class BufferConfig:
    capacity: int = 100_000
    neighbours: int = 8  # k retrieved per request
    hnsw_above: int = 50_000
    hnsw_m: int = 32
    ef_search: int = 256
    snapshot_every: int = 256  # requests between snapshots; the write-ahead log covers the rest


@dataclass(frozen=True)
class GateConfig:
    threshold: float = 0.6  # vote confidence at or above which a request updates the policy
    min_answered: int = 2  # fewer answered trajectories never update


@dataclass(frozen=True)
class UpdateConfig:
    positives: int = 2  # shortest high-fidelity trajectories of the winning cluster taken as positives
    label_weight: float = 1.0  # pseudo-label reward of a positive (negatives get 0), added to the components
    exemplars: int = 0  # neighbours' successful tool chains shown in the prompt (0: none)


@dataclass(frozen=True)
class TTRLConfig:
    stream: StreamConfig = field(default_factory=StreamConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    vote: VoteConfig = field(default_factory=VoteConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    corridor: CorridorConfig = field(default_factory=CorridorConfig)
    micro_batch: int = 2  # requests rolled out together per step
    shown_max_pixels: int = 50176  # area (px) question images are shown at: the model group's processor size
    learn: bool = True  # false: serve only (vote and answer, never update)
    checkpoint_every: int = 8  # accepted updates between actor checkpoints (and buffer snapshots)
    output_dir: str = "ttrl"  # answers, offsets, dead letters, buffer; relative to pixelis.run_dir


def ttrl_config(cfg: DictConfig) -> TTRLConfig:
    """The recipe's `ttrl` block, checked: unknown keys and bad values raise a RecipeError naming the key."""
    try:
        config = from_dict(TTRLConfig, OmegaConf.to_container(cfg.ttrl, resolve=True), "ttrl")
    except (ValueError, TypeError) as exc:
        raise RecipeError(str(exc)) from exc
    if not config.stream.path:
        raise RecipeError("ttrl.stream.path: not set; give the request JSONL file or folder (ttrl.stream.path=...)")
    stream = config.stream
    if min(stream.max_line_bytes, stream.max_images, stream.max_record_pixels) < 1:
        raise RecipeError("ttrl.stream: max_line_bytes, max_images and max_record_pixels must be >= 1")
    if config.micro_batch < 1 or config.update.positives < 1 or config.buffer.neighbours < 0:
        raise RecipeError("ttrl: micro_batch and update.positives must be >= 1 and buffer.neighbours >= 0")
    if not 0 <= config.gate.threshold <= 1:
        raise RecipeError(f"ttrl.gate.threshold must be in [0, 1]; got {config.gate.threshold}")
    return config
