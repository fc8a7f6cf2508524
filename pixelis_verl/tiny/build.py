"""Tiny Qwen2.5-VL and Qwen3-VL models built locally, for CPU tests and the demo.

Each is a complete Hugging Face model directory — config, float32 safetensors weights, a locally trained tokenizer
with the Qwen special tokens, the real image processor with small min/max pixels, the tool-aware chat template and an
image-only processor (see `runtime/processor.py`) — and about 1.5M parameters, so verl's whole loop runs on two
cores. Nothing is downloaded. After building, a short supervised warm start (`warm_start.py`) teaches the model to
call `zoom_in`.

    python -m pixelis_verl.tiny --out DIR [--family qwen2_5_vl|qwen3_vl|all] [--no-warm-start] [--seed 0]

Tests use `tiny_model_path(family)`, which builds once into `$PIXELIS_TINY_DIR` (default
`~/.cache/pixelis_verl/tiny`) under a file lock and rebuilds when `BUILDER_VERSION` changes.

The same builder makes the learner tier's random base (`SIZES["learner"]`, ~7M parameters, no warm start):
`tiny/learner.py` then teaches it the card task family by phase-1 SFT (`make learner`).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pixelis_verl.data.rl_rows import ALL_KINDS
from pixelis_verl.data.synth.card_tasks import CARD_LEVELS
from pixelis_verl.ops.sizes import ImageBudget
from pixelis_verl.tiny.tokenizer import generic_corpus, train_tokenizer

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN").upper())

BUILDER_VERSION = 4  # bump whenever the files this module writes change; cached builds are then rebuilt
MARKER = "pixelis_tiny.json"
CHAT_TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "chat_templates" / "qwen_vl_tools.jinja"
MAX_VISION_TOKENS = 64  # merged patches per image: bounds sequence length on CPU
MIN_VISION_TOKENS = 4
REMOTE_CODE_MODULE = "processing_pixelis"  # re-exports the image-only processors for trust_remote_code loading
LEARNER_KINDS = (*ALL_KINDS, *CARD_LEVELS)  # the learner's tokenizer also sees the card traces it will learn


@dataclass(frozen=True)
class Family:
    model_type: str
    architecture: str
    patch_size: int
    tool_config: str  # its tool YAML in conf/tools/ (coordinate frame, size factor); the warm-start traces use it
    image_mean: tuple[float, float, float] | None  # None: the processor's default (OpenAI CLIP)

    def tool_config_path(self) -> Path:
        from pixelis_verl.paths import REPO_ROOT

        return REPO_ROOT / "conf" / "tools" / self.tool_config

    def budget(self) -> ImageBudget:
        factor = self.patch_size * 2  # spatial merge size 2: one vision token per factor x factor pixels
        return ImageBudget(MIN_VISION_TOKENS * factor**2, MAX_VISION_TOKENS * factor**2, factor)


FAMILIES = {
    "qwen2_5_vl": Family("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", 14, "pixel_tools.yaml", None),
    "qwen3_vl": Family("qwen3_vl", "Qwen3VLForConditionalGeneration", 16, "pixel_tools_qwen3_vl.yaml", (0.5, 0.5, 0.5)),
}


@dataclass(frozen=True)
class ModelSize:
    """Depths and widths of a locally built model, and the task kinds its tokenizer is trained on. `tiny` shows the
    mechanics in CI; `learner` is large enough to learn the card task family (`tiny/learner.py`)."""

    layers: int
    hidden: int  # text width; head_dim = hidden / heads
    intermediate: int
    heads: int
    kv_heads: int
    vision_depth: int
    vision_hidden: int
    vision_intermediate: int
    vision_heads: int = 4
    vocab_size: int = 3000  # the locally trained BPE (tiny_tokenizer.py)
    corpus_kinds: tuple[str, ...] = ALL_KINDS  # traces of these task kinds join the tokenizer's training text


SIZES = {
    "tiny": ModelSize(4, 128, 384, 4, 2, vision_depth=2, vision_hidden=64, vision_intermediate=128),  # ~1.5M
    "learner": ModelSize(
        6, 256, 768, 4, 2, vision_depth=4, vision_hidden=128, vision_intermediate=256, corpus_kinds=LEARNER_KINDS
    ),  # ~7M
}


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown tiny model family {name!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[name]


def _config(family: Family, tokenizer: Any, size: ModelSize) -> Any:
    """Qwen-VL config at toy scale; `SIZES["tiny"]`: 4 text layers of width 128 (head_dim 32), a 2-block vision
    tower of width 64."""
    import transformers

    ids = tokenizer.convert_tokens_to_ids
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": size.hidden,
        "intermediate_size": size.intermediate,
        "num_hidden_layers": size.layers,
        "num_attention_heads": size.heads,
        "num_key_value_heads": size.kv_heads,
        "max_position_embeddings": 32768,
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": ids("<|endoftext|>"),
    }
    vision = {
        "depth": size.vision_depth,
        "hidden_size": size.vision_hidden,
        "intermediate_size": size.vision_intermediate,
        "num_heads": size.vision_heads,
        "out_hidden_size": size.hidden,
    }
    vision |= {"patch_size": family.patch_size, "spatial_merge_size": 2, "temporal_patch_size": 2}
    tokens = {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
        "tie_word_embeddings": False,
    }
    # M-RoPE sections (temporal, height, width) split the head_dim / 2 rotary frequencies in the real models'
    # proportions, [16, 24, 24] (Qwen2.5-VL) and [24, 20, 20] (Qwen3-VL) of 64: [4, 6, 6] and [6, 5, 5] of 16.
    half = size.hidden // size.heads // 2
    if family.model_type == "qwen2_5_vl":
        sections = _mrope_sections(half, half // 4)
        text["rope_parameters"] = {"rope_type": "default", "mrope_section": sections, "rope_theta": 1e6}
        vision |= {"window_size": 112, "fullatt_block_indexes": list(range(1, size.vision_depth, 2))}
        config = transformers.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **tokens)
    else:
        text |= {"head_dim": 2 * half}
        text["rope_parameters"] = {
            "rope_type": "default",
            "mrope_section": _mrope_sections(half, half * 3 // 8),
            "mrope_interleaved": True,
            "rope_theta": 5e6,
        }
        vision |= {"num_position_embeddings": 256, "deepstack_visual_indexes": [0]}
        config = transformers.Qwen3VLConfig(text_config=text, vision_config=vision, **tokens)
    config.architectures = [family.architecture]
    return config


def _mrope_sections(half: int, temporal: int) -> list[int]:
    """(temporal, height, width) rotary frequencies: `temporal` of them, the rest of `half` split evenly."""
    spatial = (half - temporal) // 2
    return [temporal, spatial, spatial]


def _processor(family: Family, tokenizer: Any) -> Any:
    from transformers import Qwen2VLImageProcessor

    from pixelis_verl.runtime.processor import IMAGE_ONLY_PROCESSORS

    budget = family.budget()
    image_processor = Qwen2VLImageProcessor(
        min_pixels=budget.min_pixels,
        max_pixels=budget.max_pixels,
        patch_size=family.patch_size,
        temporal_patch_size=2,
        merge_size=2,
        **({"image_mean": list(family.image_mean), "image_std": list(family.image_mean)} if family.image_mean else {}),
    )
    chat_template = CHAT_TEMPLATE_PATH.read_text()
    tokenizer.chat_template = chat_template
    return IMAGE_ONLY_PROCESSORS[family.model_type](image_processor, tokenizer, chat_template=chat_template)


def _write_remote_code(out_dir: Path, processor_cls: type) -> None:
    """auto_map to a re-export of the image-only processor, for processes that never import pixelis_verl."""
    (out_dir / f"{REMOTE_CODE_MODULE}.py").write_text(
        '"""Image-only processor of a pixelis_verl tiny model; see pixelis_verl/runtime/processor.py."""\n\n'
        f"from pixelis_verl.runtime.processor import {processor_cls.__name__}\n\n"
        f'__all__ = ["{processor_cls.__name__}"]\n'
    )
    config_path = out_dir / "processor_config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {"AutoProcessor": f"{REMOTE_CODE_MODULE}.{processor_cls.__name__}"}
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def _tokenizer_corpus(seed: int, kinds: tuple[str, ...]) -> list[str]:
    """Generic text plus rendered golden traces, so the template and tool-call JSON get their own merges."""
    from transformers.utils.chat_template_utils import render_jinja_template

    from pixelis_verl.data.synth.tasks import generate_tasks
    from pixelis_verl.tiny.warm_start import golden_traces, task_schemas
    from pixelis_verl.tools.session import load_tools

    texts = generic_corpus(seed)
    template = CHAT_TEMPLATE_PATH.read_text()
    tasks = generate_tasks(4 * len(kinds), seed + 1, kinds)
    for family in FAMILIES.values():
        with tempfile.TemporaryDirectory(prefix="pixelis-tokenizer-") as data_root:
            tools = load_tools(family.tool_config_path(), data_root)
            traces = golden_traces(tasks, tools, family.budget(), Path(data_root))
            for task, (messages, _) in zip(tasks, traces, strict=True):
                schemas = task_schemas(task, tools)
                rendered, _ = render_jinja_template([messages], tools=schemas, chat_template=template)
                texts.append(rendered[0])
    return texts


def build_tiny_model(
    family: str, out_dir: str | Path, seed: int = 0, warm_start: bool = True, size: str = "tiny"
) -> Path:
    """Build one model directory of `family` and `size` (a key of `SIZES`) at `out_dir` and return its path.

    The build happens in a sibling staging directory that replaces `out_dir` only when complete, so an interrupted
    build leaves nothing half-written behind. An earlier build at `out_dir` is replaced; anything else is refused.
    """
    spec = _family(family)
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; known: {sorted(SIZES)}")
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise FileExistsError(f"tiny: {out_dir} is not empty and holds no {MARKER}; not overwriting it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        _build(spec, staging, seed, warm_start, size)
        staging.chmod(0o755)  # mkdtemp makes it private
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _build(spec: Family, out_dir: Path, seed: int, warm_start: bool, size: str) -> None:
    from transformers import AutoModelForImageTextToText, GenerationConfig

    from pixelis_verl.tiny import warm_start as ws

    torch.manual_seed(seed)
    dims = SIZES[size]
    tokenizer = train_tokenizer(_tokenizer_corpus(seed, dims.corpus_kinds), out_dir, dims.vocab_size)
    processor = _processor(spec, tokenizer)
    # transformers does not save the attention implementation; loaders default to sdpa on CPU, and verl's
    # flash_attention_2 default is overridden in conf/cluster/cpu_local.yaml (override_config.attn_implementation).
    model = AutoModelForImageTextToText.from_config(
        _config(spec, tokenizer, dims), dtype=torch.float32, attn_implementation="sdpa"
    )
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(bos_token_id=eos[1], eos_token_id=eos, pad_token_id=eos[1])

    report = None
    if warm_start:
        report = ws.warm_start(model, processor, spec.tool_config_path(), ws.WarmStartConfig(seed=seed))
        (out_dir / "warm_start.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    _write_remote_code(out_dir, type(processor))
    marker = {"builder_version": BUILDER_VERSION, "family": spec.model_type, "seed": seed, "warm_start": warm_start}
    marker["size"] = size
    (out_dir / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    parameters = sum(p.numel() for p in model.parameters())
    logger.info("built %s %s, %d parameters (warm start: %s)", size, spec.model_type, parameters, report)


def _is_current(path: Path) -> bool:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    current = marker.get("builder_version") == BUILDER_VERSION and marker.get("size", "tiny") == "tiny"
    return current and marker.get("warm_start") is True


def cached_build(path: Path, is_current: Callable[[Path], bool], build: Callable[[Path], Any]) -> Path:
    """`path` when `is_current(path)`, else after `build(path)` under a file lock beside it: parallel processes
    (pytest-xdist, Ray workers) wait for one build instead of racing."""
    from filelock import FileLock

    if is_current(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent / f".{path.name}.lock")):
        if not is_current(path):  # another process may have built it while we waited
            build(path)
    return path


def cache_root(variable: str, name: str) -> Path:
    """Where a model tier is cached: `$variable`, else ``~/.cache/pixelis_verl/<name>``."""
    return Path(os.environ.get(variable, Path.home() / ".cache" / "pixelis_verl" / name)).expanduser()


def tiny_model_path(family: str) -> Path:
    """The cached, warm-started tiny model of `family`, built on first use; safe to call from parallel processes."""
    _family(family)
    root = cache_root("PIXELIS_TINY_DIR", "tiny")
    return cached_build(root / family, _is_current, lambda path: build_tiny_model(family, path))


def _configure_cli_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from pixelis_verl.tiny import warm_start as ws

    for name in (__name__, ws.__name__):  # module loggers default to WARN; a person waits on this CLI
        logging.getLogger(name).setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build tiny Qwen2.5-VL / Qwen3-VL model directories locally.")
    parser.add_argument("--out", required=True, type=Path, help="writes OUT/<family>/")
    parser.add_argument("--family", default="all", choices=[*FAMILIES, "all"])
    parser.add_argument("--no-warm-start", dest="warm_start", action="store_false", help="keep random weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even when OUT holds a current warm-started build")
    args = parser.parse_args(argv)
    _configure_cli_logging()
    families = list(FAMILIES) if args.family == "all" else [args.family]
    if args.warm_start and not args.force:  # `make install` runs this every time; build only what is stale
        for family in [f for f in families if _is_current(args.out / f)]:
            print(f"{family}: {args.out / family} is current (builder version {BUILDER_VERSION}); --force rebuilds")  # noqa: T201
            families.remove(family)
    if not families:
        return
    # One process per family: each warm start trains on one thread, so two families use two cores.
    workers = min(len(families), os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_configure_cli_logging) as pool:
        jobs = [pool.submit(build_tiny_model, f, args.out / f, args.seed, args.warm_start) for f in families]
        for family, job in zip(families, jobs, strict=True):
            path = job.result()
            report = path / "warm_start.json"
            print(f"{family}: {path}" + (f"  {report.read_text().strip()}" if report.exists() else ""))  # noqa: T201


if __name__ == "__main__":
    main()
