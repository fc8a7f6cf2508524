"""Small synthesised trace sets shared by the data and SFT tests: one trace per task kind and variant."""

from pathlib import Path

from pixelis_verl.data.cota import TraceSet, View
from pixelis_verl.data.synth.tasks import TASK_KINDS
from pixelis_verl.data.synth.traces import SynthConfig, synthesize

TOOLS_YAML = Path(__file__).resolve().parents[2] / "conf" / "tools" / "pixel_tools.yaml"
# The tiny Qwen2.5-VL's processor budget (tiny/build.py): 4 to 64 vision tokens of 28 x 28 pixels.
VIEW = View("absolute_resized", 4 * 28 * 28, 64 * 28 * 28, 28)
VARIANTS = ("golden", "self_correction", "trap")


def synth_config(variant: str, seed: int = 0) -> SynthConfig:
    return SynthConfig(TOOLS_YAML, VIEW, seed=seed, kinds=tuple(TASK_KINDS), mix=((variant, 1.0),))


def make_set(root: Path, variant: str, seed: int = 0, num: int = len(TASK_KINDS)) -> TraceSet:
    traces = TraceSet(root)
    synthesize(synth_config(variant, seed), traces, num, progress=False)
    return traces
