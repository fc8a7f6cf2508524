"""What a learner checkpoint has learnt, token by token: teacher-forced loss on held-out golden card traces, by role.

A greedy evaluation says whether the whole trajectory worked; this says which part did not. Each golden trace of
the card task family (synthesised here with a held-out seed, the learner's tool config) is rendered by our SFT
dataset (verl's multi-turn SFT dataset + the token weights), run through the checkpoint once, and the negative
log-likelihood of every assistant token is averaged by role:

- ``answer``: the tokens between ``<answer>`` and ``</answer>`` (the colour read off the zoomed view; chance is
  ln 6 = 1.79 nats);
- ``argument``: the call's tool name and argument values (the region copied from the question);
- ``other``: every other assistant token (the template and the thoughts).

Usage: python benchmarks/token_loss.py [MODEL_DIR ...] [--traces 48] [--seed 4242]
(default: the cached learner build). Last line: one JSON object, per model, with the figures.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch
from _report import report
from omegaconf import OmegaConf

from pixelis_verl.data.pipeline import synth_sft_splits
from pixelis_verl.paths import CONF_DIR
from pixelis_verl.tiny.learner import learner_model_path

KINDS = ["card_easy", "card", "card_hard"]


def role_losses(model_dir: Path, parquet: Path) -> dict[str, float]:
    """Mean NLL per role (and per level for the answer) of `model_dir` on the traces in `parquet`."""
    import pandas as pd
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import pixelis_verl.runtime.processor  # noqa: F401  (registers the image-only processors)
    from pixelis_verl.sft.dataset import CoTASFTDataset
    from pixelis_verl.sft.token_weights import answer_tokens

    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    config = {"pad_mode": "no_padding", "truncation": "error", "max_length": 4096,
              "token_weights": {"tool_name": 2.0, "argument_value": 2.0}}  # fmt: skip
    dataset = CoTASFTDataset([str(parquet)], processor.tokenizer, OmegaConf.create(config), processor=processor)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    levels = list(pd.read_parquet(parquet)["task"])
    sums: dict[str, list[float]] = {}
    for index in range(len(dataset)):
        row = dataset[index]
        ids, mask, weights = row["input_ids"], row["loss_mask"], row["loss_weights"]
        images = (ids == model.config.image_token_id).long()[None]
        with torch.no_grad():
            logits = model(input_ids=ids[None], mm_token_type_ids=images, **row.get("multi_modal_inputs", {})).logits[0]
        nll = -torch.log_softmax(logits[:-1].float(), -1).gather(-1, ids[1:, None])[:, 0]
        answer = set(answer_tokens(ids, mask, processor.tokenizer))
        for position in range(1, len(ids)):
            if mask[position]:
                role = "answer" if position in answer else "argument" if weights[position] > 1 else "other"
                value = float(nll[position - 1])
                sums.setdefault(role, []).append(value)
                if role == "answer":
                    sums.setdefault(f"answer_{levels[index]}", []).append(value)
    return {key: sum(values) / len(values) for key, values in sorted(sums.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="checkpoint folders (default: the learner build)")
    parser.add_argument("--traces", type=int, default=48, help="held-out golden traces, the three levels cycled")
    parser.add_argument("--seed", type=int, default=4242, help="synthesis seed (SFT uses 0/1, evaluation 1000)")
    args = parser.parse_args()
    models = args.models or [learner_model_path()]
    figures: dict[str, object] = {"traces": args.traces, "answer_chance_nats": round(math.log(6), 4)}
    with tempfile.TemporaryDirectory(prefix="pixelis-token-loss-") as work:
        synth = OmegaConf.create({"tool_config": str(CONF_DIR / "tools" / "pixel_tools_qwen3_vl.yaml"),
                                  "num_train": 1, "num_val": args.traces, "seed": args.seed - 1, "kinds": KINDS,
                                  "mix": {"golden": 1.0}, "workers": 1, "max_pixels": None})  # fmt: skip
        parquet = synth_sft_splits(synth, str(models[0]), Path(work))["val"]
        for model in models:
            losses = role_losses(model, parquet)
            print(f"{model}: {losses}", file=sys.stderr, flush=True)
            figures[str(model)] = {key: round(value, 3) for key, value in losses.items()}
    report(figures, "python benchmarks/token_loss.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
