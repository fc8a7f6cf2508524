"""What every LoRA end-to-end test checks of a LoRA checkpoint, with the real parts: verl's own model merger
gathers the shards (the base under plain names and peft's adapter folder), peft applies the adapter to the
base, and `pixelis_verl.merge` must give a plain model with the same outputs."""

import subprocess
import sys
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from pixelis_verl.merge import is_lora_checkpoint, merge_adapters
from pixelis_verl.tiny.build import tiny_model_path


def gather(checkpoint: Path, out: Path) -> Path:
    """verl's merger CLI, as docs/cluster.md gives it: `out` gets the base and `out/lora_adapter`."""
    cmd = [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(checkpoint),
           "--target_dir", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def _logits(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.arange(3, 40).unsqueeze(0)  # text tokens: the language model, where the adapters are
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


def check_lora_checkpoint(checkpoint: Path, work: Path) -> dict[str, torch.Tensor]:
    """Asserts that the adapters trained, the base and the vision tower did not, and that the merged model loads as
    a plain one with the logits of base + adapter; returns the gathered state as saved (base, extras such as the
    argument head)."""
    assert is_lora_checkpoint(checkpoint)
    gathered = gather(checkpoint, work / "gathered")
    adapter = load_file(gathered / "lora_adapter" / "adapter_model.safetensors")
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and all(float(t.abs().max()) > 0 for t in lora_b)  # peft starts B at zero
    assert not any("visual" in name for name in adapter)  # the vision tower has no adapters
    initial = AutoModelForImageTextToText.from_pretrained(tiny_model_path("qwen2_5_vl")).state_dict()
    base = AutoModelForImageTextToText.from_pretrained(gathered).state_dict()  # names mapped as for `initial`
    assert set(base) == set(initial)
    # the base is frozen (verl's merger writes bfloat16, the published dtype of the 7B/8B models)
    assert all(torch.equal(base[n], initial[n].to(base[n].dtype)) for n in initial)
    plain = AutoModelForImageTextToText.from_pretrained(gathered, dtype=torch.float32)
    expected = _logits(PeftModel.from_pretrained(plain, gathered / "lora_adapter"))
    merged = AutoModelForImageTextToText.from_pretrained(merge_adapters(checkpoint, work / "merged", "float32"))
    got = _logits(merged)
    assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())
    before = _logits(AutoModelForImageTextToText.from_pretrained(gathered, dtype=torch.float32))
    assert not torch.allclose(got, before, atol=1e-4)  # the adapters change the outputs
    return load_file(gathered / "model.safetensors")
