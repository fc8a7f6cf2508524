"""Pre-flight: the arithmetic a cluster run would otherwise do for you after hours in a queue, done on the resolved
config and the model's own config before anything starts.

Each check is a function registered in `CHECKS`; it reads the resolved recipe and, where it needs one, the
model's facts (`ModelFacts`, from its ``config.json`` and weight files), and returns findings: the key to change,
what is wrong, and the fix, in one line. Every entry runs the checks after composing the recipe and refuses a run
with a finding (`run_preflight`); ``--preflight`` on an entry runs them alone. The hardware the arithmetic assumes
(GPU memory, storage write speed) is ``pixelis.preflight`` (conf/cluster/), stated where it is set.

What is checked, and why (each was a defect of a GPU recipe found by review, docs/cluster.md "Pre-flight"):
- `vllm_kv_cache`: vLLM refuses to start when one sequence of ``max_model_len`` tokens does not fit the KV
  cache left beside the weights; verl leaves ``max_model_len`` at the model's maximum (262,144 for Qwen3-VL).
- `context_lengths`: ``max_model_len`` below prompt + response cuts every long trajectory short.
- `logits_memory`: without fused kernels, a packed micro-batch's full-vocabulary fp32 log-probabilities
  (tokens x vocabulary x 4 bytes) must fit beside the model.
- `token_budgets`: packed micro-batches (``use_dynamic_bsz``) must hold at least one whole trajectory, and
  verl's performance guide asks for twice that; the prompt must hold one question image's tokens.
- `batch_divisibility`: verl splits each batch of prompts x n over every GPU of every node, and each
  mini-batch too; 128 x 8 over 3 nodes of 8 GPUs does not divide.
- `model_tool_family`: a Qwen3-VL checkpoint read with Qwen2.5-VL's tool coordinates makes every call wrong.
- `lora_rank`: vLLM serves adapters of ranks 1, 8, 16, 32, 64, 128, 256, 320 and 512 only.
- `lora_hf_copy`: verl's Hugging Face copy of a LoRA model holds peft's names; loaded, its weights are random.
- `greedy_temperature`: verl's agent loop reads the validation temperature, never ``do_sample``.
- `checkpoint_timeout`: rank 0 writes the Hugging Face copy of the actor while every other rank waits in a
  collective that times out after ``nccl_timeout`` seconds.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from pixelis_verl.config import FAMILIES, RecipeError, model_key, recipe_phase
from pixelis_verl.typed_config import from_dict

GIB = 1024**3


@dataclass(frozen=True)
class Finding:
    key: str  # the config key to change
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}; {self.fix}"


@dataclass
class Hardware:
    """``pixelis.preflight``: what the arithmetic assumes about the machines (conf/cluster/ sets it per cluster)."""

    gpu_memory_gib: float = 80.0  # memory of one GPU
    vllm_reserve_gib: float = 4.0  # vLLM's activations, CUDA graphs and workspace beside weights and KV cache
    checkpoint_write_mb_s: float = 100.0  # how fast rank 0 writes a checkpoint (shared storage: often 100-500)
    timeout_margin: float = 2.0  # a collective's timeout must be this many times the estimated wait
    logits_share: float = 0.25  # the most of a GPU the actor's full-vocabulary log-probabilities may take


@dataclass(frozen=True)
class ModelFacts:
    """What the checks need from a model: read from its config.json and weight files."""

    model_type: str  # qwen2_5_vl, qwen3_vl, ...
    layers: int
    kv_heads: int
    head_dim: int
    max_position_embeddings: int
    weight_bytes: int  # on disk (bf16 for the Qwen releases): the rollout's copy of the weights
    vocab_size: int

    @property
    def kv_bytes_per_token(self) -> int:
        """Keys and values of every layer in bf16."""
        return 2 * self.layers * self.kv_heads * self.head_dim * 2

    @classmethod
    def of(cls, config: dict[str, Any], weight_bytes: int | None = None) -> ModelFacts:
        text = config.get("text_config") or config  # Qwen3-VL nests the language model's config
        heads = int(text["num_attention_heads"])
        head_dim = int(text.get("head_dim") or int(text["hidden_size"]) // heads)
        return cls(
            model_type=str(config.get("model_type", "")),
            layers=int(text["num_hidden_layers"]),
            kv_heads=int(text.get("num_key_value_heads") or heads),
            head_dim=head_dim,
            max_position_embeddings=int(text["max_position_embeddings"]),
            weight_bytes=weight_bytes if weight_bytes is not None else _estimated_weight_bytes(config),
            vocab_size=int(text["vocab_size"]),
        )


def _estimated_weight_bytes(config: dict[str, Any]) -> int:
    """bf16 bytes from the shapes, when there are no weight files to measure: the language model's attention, gated
    MLP and embeddings, and the vision tower's blocks (counted with a gated MLP too: an over-estimate of ~1% for
    Qwen3-VL's plain one). Qwen2.5-VL-7B comes out at 8.25B parameters (published: 8.29B), Qwen3-VL-8B at 8.74B."""
    text = config.get("text_config") or config
    hidden, layers = int(text["hidden_size"]), int(text["num_hidden_layers"])
    heads = int(text["num_attention_heads"])
    head_dim = int(text.get("head_dim") or hidden // heads)
    kv = int(text.get("num_key_value_heads") or heads)
    attention = hidden * head_dim * (2 * heads + 2 * kv)
    mlp = 3 * hidden * int(text["intermediate_size"])
    tied = text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))
    embeddings = int(text["vocab_size"]) * hidden * (1 if tied else 2)
    vision = config.get("vision_config") or {}
    tower = 0
    if vision.get("depth"):
        width = int(vision["hidden_size"])
        tower = int(vision["depth"]) * (4 * width * width + 3 * width * int(vision["intermediate_size"]))
    return 2 * (layers * (attention + mlp) + embeddings + tower)


def read_model_facts(path: str) -> ModelFacts | None:
    """The facts of the model at `path` (a local folder, or a hub id already in the local Hugging Face cache);
    None when its config cannot be read here (the model-dependent checks are then skipped, and say so)."""
    folder = Path(os.path.expanduser(path))
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(path, local_files_only=True, allow_patterns=["*.json"]))
        except Exception:  # not cached, not a hub id, offline: nothing to read
            return None
    if not (folder / "config.json").is_file() and (folder / "huggingface" / "config.json").is_file():
        folder = folder / "huggingface"  # a verl checkpoint folder (a LoRA one is evaluated from it, merged)
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_bytes = int(json.loads(index.read_text()).get("metadata", {}).get("total_size", 0)) or None
    else:
        weight_bytes = sum(p.stat().st_size for p in folder.glob("*.safetensors")) or None
    return ModelFacts.of(config, weight_bytes)


@dataclass(frozen=True)
class Context:
    cfg: DictConfig
    model: ModelFacts | None
    hardware: Hardware

    def get(self, key: str, default: Any = None) -> Any:
        return OmegaConf.select(self.cfg, key, default=default)

    @property
    def rl(self) -> bool:
        """A recipe on verl's PPO trainer (RL, TTRL, evaluation), not the SFT trainer."""
        return recipe_phase(self.cfg) != "sft"

    @property
    def on_gpu(self) -> bool:
        return self.get("trainer.device") == "cuda"

    @property
    def lora_rank(self) -> int:
        """The adapters' rank where the recipe names its model (0: full fine-tuning)."""
        return int(self.get(f"{model_key(self.cfg)}.lora_rank", 0) or 0)

    @property
    def sequence_length(self) -> int:
        return int(self.get("data.max_prompt_length")) + int(self.get("data.max_response_length"))


Check = Callable[[Context], list[Finding]]
CHECKS: dict[str, Check] = {}


def check(function: Check) -> Check:
    CHECKS[function.__name__] = function
    return function


@check
def vllm_kv_cache(ctx: Context) -> list[Finding]:
    if not ctx.rl or ctx.get("actor_rollout_ref.rollout.name") != "vllm" or ctx.model is None:
        return []
    m, hw = ctx.model, ctx.hardware
    tp = int(ctx.get("actor_rollout_ref.rollout.tensor_model_parallel_size", 1))
    utilization = float(ctx.get("actor_rollout_ref.rollout.gpu_memory_utilization"))
    length = ctx.get("actor_rollout_ref.rollout.max_model_len") or m.max_position_embeddings
    kv_heads_per_gpu = max(1, math.ceil(m.kv_heads / tp))  # heads split over TP; replicated when fewer than TP
    need = m.kv_bytes_per_token // m.kv_heads * kv_heads_per_gpu * int(length)
    budget = hw.gpu_memory_gib * GIB * utilization - m.weight_bytes / tp - hw.vllm_reserve_gib * GIB
    if need <= budget:
        return []
    unset = "" if ctx.get("actor_rollout_ref.rollout.max_model_len") else " (unset: the model's maximum)"
    return [
        Finding(
            "actor_rollout_ref.rollout.max_model_len",
            f"one sequence of {int(length)} tokens{unset} needs {need / GIB:.1f} GiB of KV cache per GPU, but "
            f"{hw.gpu_memory_gib:g} GiB x gpu_memory_utilization {utilization:g} - weights "
            f"{m.weight_bytes / tp / GIB:.1f} GiB (TP={tp}) - {hw.vllm_reserve_gib:g} GiB reserve leaves "
            f"{max(budget, 0) / GIB:.1f} GiB: vLLM will refuse to start",
            (
                f"set it to max_prompt_length + max_response_length = {ctx.sequence_length}, or raise "
                if int(length) > ctx.sequence_length
                else "raise "
            )
            + "actor_rollout_ref.rollout.tensor_model_parallel_size or gpu_memory_utilization",
        )
    ]


@check
def context_lengths(ctx: Context) -> list[Finding]:
    length = ctx.get("actor_rollout_ref.rollout.max_model_len") if ctx.rl else None
    if not length or int(length) >= ctx.sequence_length:
        return []
    return [
        Finding(
            "actor_rollout_ref.rollout.max_model_len",
            f"{length} is less than max_prompt_length + max_response_length = {ctx.sequence_length}: trajectories "
            "would be cut short",
            f"set it to {ctx.sequence_length}",
        )
    ]


@check
def token_budgets(ctx: Context) -> list[Finding]:
    findings = []
    if ctx.rl and ctx.on_gpu and ctx.get("actor_rollout_ref.actor.use_dynamic_bsz"):
        budget = int(ctx.get("actor_rollout_ref.actor.ppo_max_token_len_per_gpu"))
        if budget < 2 * ctx.sequence_length:
            findings.append(
                Finding(
                    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu",
                    f"{budget} tokens is {budget / ctx.sequence_length:.2f}x one trajectory "
                    f"({ctx.sequence_length}); verl's performance guide asks for at least 2x",
                    f"set it to {2 * ctx.sequence_length} or more",
                )
            )
    shown = ctx.get("pixelis.synth_data.shown_max_pixels")
    patch = ctx.get("data.image_patch_size")
    prompt = ctx.get("data.max_prompt_length")
    if shown and patch and prompt:
        image_tokens = int(shown) // (2 * int(patch)) ** 2  # one token per merged 2x2 patch
        if image_tokens >= int(prompt):
            findings.append(
                Finding(
                    "data.max_prompt_length",
                    f"{prompt} tokens cannot hold one question image at shown_max_pixels {shown} "
                    f"({image_tokens} tokens)",
                    f"raise it above {image_tokens} plus the text and tool schemas",
                )
            )
    return findings


@check
def logits_memory(ctx: Context) -> list[Finding]:
    """Without verl's fused kernels the actor materialises fp32 log-probabilities over the whole vocabulary for
    every token of a packed micro-batch: 40,960 tokens x 152,064 entries x 4 bytes is 25 GB on top of the model."""
    if not (ctx.rl and ctx.on_gpu and ctx.model and ctx.get("actor_rollout_ref.actor.use_dynamic_bsz")):
        return []
    if ctx.get("actor_rollout_ref.model.use_fused_kernels"):
        return []
    tokens = int(ctx.get("actor_rollout_ref.actor.ppo_max_token_len_per_gpu"))
    need = tokens * ctx.model.vocab_size * 4
    limit = ctx.hardware.gpu_memory_gib * GIB * ctx.hardware.logits_share
    if need <= limit:
        return []
    return [
        Finding(
            "actor_rollout_ref.model.use_fused_kernels",
            f"off, so a micro-batch of {tokens} tokens holds {need / GIB:.1f} GiB of fp32 log-probabilities over "
            f"{ctx.model.vocab_size} tokens, more than {ctx.hardware.logits_share:.0%} of a "
            f"{ctx.hardware.gpu_memory_gib:g} GiB GPU",
            "set it to true (fused_kernel_options.impl_backend: triton), or lower ppo_max_token_len_per_gpu",
        )
    ]


@check
def batch_divisibility(ctx: Context) -> list[Finding]:
    if not ctx.rl:
        return []
    gpus = int(ctx.get("trainer.nnodes", 1)) * int(ctx.get("trainer.n_gpus_per_node", 1))
    n = int(ctx.get("actor_rollout_ref.rollout.n", 1))
    findings = []
    for key in ("data.train_batch_size", "actor_rollout_ref.actor.ppo_mini_batch_size"):
        prompts = ctx.get(key)
        if prompts is not None and int(prompts) * n % gpus:
            findings.append(
                Finding(
                    key,
                    f"{prompts} prompts x n={n} = {int(prompts) * n} trajectories do not divide over "
                    f"{gpus} GPUs (trainer.nnodes x n_gpus_per_node)",
                    f"make {key} x n a multiple of {gpus}",
                )
            )
    return findings


def _tool_configs(path: str) -> list[tuple[str, dict[str, Any]]]:
    document = yaml.safe_load(Path(path).read_text()) or {}
    return [(str(t.get("class_name")), t.get("config") or {}) for t in document.get("tools") or []]


@check
def model_tool_family(ctx: Context) -> list[Finding]:
    family = FAMILIES.get(ctx.model.model_type) if ctx.model else None
    if family is None:
        return []
    findings = []
    patch = ctx.get("data.image_patch_size")
    if patch is not None and int(patch) != family.patch_size:
        findings.append(
            Finding(
                "data.image_patch_size",
                f"{patch} but the model is {ctx.model.model_type} (patch {family.patch_size})",
                f"pick the model group of that family (model@_global_=...) or set it to {family.patch_size}",
            )
        )
    path = ctx.get("actor_rollout_ref.rollout.multi_turn.tool_config_path") if ctx.rl else None
    if path and Path(path).is_file():
        for name, config in _tool_configs(path):
            frame = config.get("coord_frame", "absolute_resized")
            factor = int(config.get("size_factor", 28))
            if frame not in family.coord_frames or factor != family.size_factor:
                findings.append(
                    Finding(
                        "actor_rollout_ref.rollout.multi_turn.tool_config_path",
                        f"{Path(path).name} reads {name.rsplit('.', 1)[-1]}'s boxes in {frame} with size_factor "
                        f"{factor}, but the model is {ctx.model.model_type} ({'/'.join(family.coord_frames)}, "
                        f"{family.size_factor})",
                        "pick the model group of the checkpoint's family (model@_global_=qwen2_5_vl_7b or qwen3_vl_8b)",
                    )
                )
                break
    return findings


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the adapter ranks vLLM's LoRA kernels serve


@check
def lora_rank(ctx: Context) -> list[Finding]:
    """vLLM serves adapters of a few ranks only; verl asks vLLM at the job's start, after the queue."""
    rank = ctx.lora_rank
    if rank <= 0 or ctx.get("actor_rollout_ref.rollout.name") != "vllm" or rank in VLLM_LORA_RANKS:
        return []
    return [
        Finding(
            "actor_rollout_ref.model.lora_rank",
            f"{rank} is not a rank vLLM serves adapters at ({', '.join(map(str, VLLM_LORA_RANKS))})",
            f"pick one of those, e.g. {min((r for r in VLLM_LORA_RANKS if r >= rank), default=512)}",
        )
    ]


@check
def lora_hf_copy(ctx: Context) -> list[Finding]:
    """verl's Hugging Face copy of a model with adapters holds peft's names (``base_model.model.…``,
    ``….base_layer.weight``): ``from_pretrained`` skips them all and leaves those weights random, silently."""
    contents = "actor_rollout_ref.actor.checkpoint" if ctx.rl else "checkpoint"
    if ctx.lora_rank <= 0 or "hf_model" not in (ctx.get(f"{contents}.save_contents") or []):
        return []
    return [
        Finding(
            f"{contents}.save_contents",
            "hf_model with LoRA adapters saves peft's unmerged names, which load as a model with random weights",
            "drop hf_model and merge the checkpoint: python -m pixelis_verl.merge <checkpoint> <out>",
        )
    ]


@check
def greedy_temperature(ctx: Context) -> list[Finding]:
    if not ctx.rl or ctx.get("actor_rollout_ref.rollout.val_kwargs.do_sample", True):
        return []
    temperature = float(ctx.get("actor_rollout_ref.rollout.val_kwargs.temperature", 0.0))
    if temperature == 0.0:
        return []
    return [
        Finding(
            "actor_rollout_ref.rollout.val_kwargs.temperature",
            f"{temperature:g} with do_sample=false: verl's agent loop samples at this temperature (it never "
            "reads do_sample), so 'greedy' answers would be samples",
            "set it to 0",
        )
    ]


@check
def checkpoint_timeout(ctx: Context) -> list[Finding]:
    contents = ctx.get("actor_rollout_ref.actor.checkpoint.save_contents") or []
    if not ctx.rl or not ctx.on_gpu or "hf_model" not in contents or ctx.model is None:
        return []
    hw = ctx.hardware
    fp32_bytes = ctx.model.weight_bytes * 2  # the actor's fp32 master weights, gathered and written by rank 0
    seconds = fp32_bytes / (hw.checkpoint_write_mb_s * 1e6)
    timeout = float(ctx.get("actor_rollout_ref.nccl_timeout", 600))
    if timeout >= hw.timeout_margin * seconds:
        return []
    return [
        Finding(
            "actor_rollout_ref.nccl_timeout",
            f"{timeout:g} s, but rank 0 writes a {fp32_bytes / 1e9:.0f} GB Hugging Face copy in ~{seconds:.0f} s at "
            f"{hw.checkpoint_write_mb_s:g} MB/s while the other ranks wait",
            f"set it to at least {math.ceil(hw.timeout_margin * seconds / 60) * 60}",
        )
    ]


def preflight(cfg: DictConfig, model: ModelFacts | None) -> list[Finding]:
    """Every finding of every check on a resolved recipe."""
    values = OmegaConf.select(cfg, "pixelis.preflight")
    hardware = from_dict(Hardware, OmegaConf.to_container(values) if values else {}, "pixelis.preflight")
    ctx = Context(cfg, model, hardware)
    return [finding for function in CHECKS.values() for finding in function(ctx)]


def run_preflight(cfg: DictConfig) -> str:
    """Refuse the recipe (RecipeError, every finding one line) or return a one-line summary of what was checked."""
    path = OmegaConf.select(cfg, f"{model_key(cfg)}.path")
    model = read_model_facts(str(path)) if path else None
    findings = preflight(cfg, model)
    if findings:
        raise RecipeError("pre-flight: " + "\n".join(str(f) for f in findings))
    read = f"model {model.model_type}" if model else f"model config of '{path}' not readable here: model checks skipped"
    return f"pre-flight: {len(CHECKS)} checks passed ({read})"
