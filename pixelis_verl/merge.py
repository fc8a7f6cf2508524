"""Merge a LoRA checkpoint into a plain Hugging Face model: ``python -m pixelis_verl.merge <checkpoint> <out>``.

A LoRA run's checkpoint is verl's sharded FSDP state of the peft-wrapped model (``<run>/checkpoints/global_step_N
/actor`` after RFT or TTRL, ``<run>/checkpoints/global_step_N`` after SFT); verl's ``hf_model`` copy of it holds
peft's unmerged names, which ``from_pretrained`` would ignore, leaving those weights random. Two real parts do
the work: verl's own model merger gathers the shards into the base model and a peft adapter folder, and peft's
``merge_and_unload`` folds the adapter in (``W = W0 + alpha / r * B @ A``). The result loads with
``from_pretrained`` like any checkpoint: RFT, evaluation, vLLM. Written beside the target and renamed into place
when complete, so a crash leaves no half-written model under the target's name. verl's shards are pickles
(``torch.load(weights_only=False)`` in its merger): merge only checkpoints your own runs wrote.

``pixelis_verl.evaluate`` calls this itself when ``model.path`` is a LoRA checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from pixelis_verl.ttrl.durable import make_dirs, publish_dir

META = "lora_train_meta.json"  # verl writes it beside the shards of a checkpoint with adapters
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def first_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_lora_checkpoint(path: str | Path) -> bool:
    """True for a verl checkpoint folder of a model trained with adapters (its shards plus verl's LoRA meta)."""
    path = Path(path)
    return (path / META).is_file() and any(path.glob("model_world_size_*_rank_0.pt"))


def published_dtype(config_dir: Path) -> str:
    """The dtype the base model was published in (config.json), the default of the merged copy."""
    config = json.loads((config_dir / "config.json").read_text())
    dtype = config.get("dtype") or config.get("torch_dtype") or "float32"
    return dtype if dtype in DTYPES else "float32"


def _gather(checkpoint: Path, work: Path) -> Path:
    """verl's model merger: the shards -> `work` (the base under plain names) and `work/lora_adapter`."""
    from verl.model_merger.base_model_merger import ModelMergerConfig
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    config = ModelMergerConfig(
        operation="merge",
        backend="fsdp",
        local_dir=str(checkpoint),
        target_dir=str(work),
        hf_model_config_path=str(checkpoint / "huggingface"),
    )
    FSDPModelMerger(config).merge_and_save()
    adapter = work / "lora_adapter"
    if not (adapter / "adapter_model.safetensors").is_file():
        raise ValueError(f"{checkpoint}: verl's merger found no LoRA weights (lora_A/lora_B) in the checkpoint")
    return adapter


def _pin_targets(adapter: Path) -> None:
    """verl's adapter config names target modules by their last name part (`q_proj`), which would also match the
    vision tower's modules of the same name; name exactly the modules the checkpoint has adapters for."""
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        names = list(f.keys())
    modules = sorted({n.removeprefix("base_model.model.").split(".lora_")[0] for n in names if ".lora_" in n})
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["target_modules"] = modules
    config_path.write_text(json.dumps(config, indent=2))


def merge_adapters(checkpoint: str | Path, out: str | Path, dtype: str | None = None) -> Path:
    """Merge the LoRA checkpoint folder `checkpoint` into a plain Hugging Face model at `out` (which must not exist).
    `dtype`: of the merged weights; default the base model's published dtype."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    checkpoint, out = Path(checkpoint), Path(out)
    if not is_lora_checkpoint(checkpoint):
        raise ValueError(f"{checkpoint}: not a LoRA checkpoint (no {META} beside model_world_size_*_rank_0.pt)")
    if out.exists():
        raise FileExistsError(f"{out}: exists; merge into a new folder")
    dtype = dtype or published_dtype(checkpoint / "huggingface")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: one of {', '.join(DTYPES)}; got {dtype!r}")
    make_dirs(out.parent)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    work = staging / "gathered"
    try:
        adapter = _gather(checkpoint, work)
        _pin_targets(adapter)
        base = AutoModelForImageTextToText.from_pretrained(work, dtype=torch.float32)  # merge in full precision
        merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
        merged.to(DTYPES[dtype]).save_pretrained(staging / "model")
        AutoProcessor.from_pretrained(checkpoint / "huggingface").save_pretrained(staging / "model")
        publish_dir(staging / "model", out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelis_verl.merge", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a LoRA run's checkpoint folder (the one holding model_world_size_*.pt)")
    parser.add_argument("out", help="the merged model's folder (new)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="of the merged weights (default: the base model's)")
    args = parser.parse_args(argv)
    try:
        out = merge_adapters(args.checkpoint, args.out, args.dtype)
    except Exception as exc:  # a damaged checkpoint fails anywhere in verl, peft or transformers: one line
        print(f"merge: error: {args.checkpoint}: {first_line(exc)}", file=sys.stderr)
        return 2
    print(f"merge: wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
