"""Token-in/token-out generation with HF transformers: the engine behind the ``hf`` rollout.

It answers the same request verl's agent loop sends a vLLM server — prompt token ids (image pads
already expanded), sampling params, and the images the model sees — and returns the response ids,
their log-probs and a stop reason. No Ray and no verl server plumbing here, so it is testable on
its own; ``hf_rollout.py`` wraps it as a Ray actor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, PreTrainedModel

logger = logging.getLogger(__name__)

# A policy (random or early in RL) can sample these; they would make the next turn's M-RoPE
# index computation fail, since no image stands behind them. vLLM never samples them either.
VISION_SPECIAL_TOKENS = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

LOGPROBS_MODES = ("processed_logprobs", "raw_logprobs")


@dataclass
class Request:
    prompt_ids: list[int]
    images: list[Any]


@dataclass
class Generation:
    token_ids: list[int]
    log_probs: list[float] | None
    stop_reason: str


def load_policy_model(path: str, dtype: str, trust_remote_code: bool = False) -> PreTrainedModel:
    """Load a causal LM or an image-text-to-text model, whichever the checkpoint is."""
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    auto_cls = AutoModelForImageTextToText if hasattr(config, "vision_config") else AutoModelForCausalLM
    model = auto_cls.from_pretrained(
        path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code, attn_implementation="sdpa"
    )
    return model.eval()


class HFGenerator:
    """Sampling with log-probs over one HF model, with in-place weight updates from the trainer."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: Any,
        processor: Any | None,
        max_model_len: int,
        default_max_tokens: int,
        logprobs_mode: str = "processed_logprobs",
    ) -> None:
        if logprobs_mode not in LOGPROBS_MODES:
            raise ValueError(f"hf rollout: logprobs_mode must be one of {LOGPROBS_MODES}; got {logprobs_mode!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor
        self.max_model_len = max_model_len
        self.default_max_tokens = default_max_tokens
        self.logprobs_mode = logprobs_mode
        vocab = tokenizer.get_vocab()
        self.suppressed_ids = sorted({vocab[t] for t in VISION_SPECIAL_TOKENS if t in vocab})
        self.image_token_id = vocab.get("<|image_pad|>")
        self.stop_ids = sorted(
            {i for i in (tokenizer.eos_token_id, vocab.get("<|im_end|>"), vocab.get("<|endoftext|>")) if i is not None}
        )

    def _vision_inputs(
        self, input_ids: torch.Tensor, images: list[Any], mm_processor_kwargs: dict | None
    ) -> dict[str, torch.Tensor]:
        if not images:
            return {}
        if self.processor is None or getattr(self.processor, "image_processor", None) is None:
            raise ValueError("hf rollout: got images but the model has no image processor (is it a VL model?)")
        out = self.processor.image_processor(images=images, return_tensors="pt", **(mm_processor_kwargs or {}))
        inputs = {k: v.to(self.model.dtype) if v.is_floating_point() else v for k, v in out.items()}
        # transformers >= 5.3 finds image tokens for M-RoPE through mm_token_type_ids; without it every token gets
        # text positions and the model sees a different input than verl's actor does (verl builds the same map).
        inputs["mm_token_type_ids"] = (input_ids == self.image_token_id).long()
        return inputs

    def _max_new_tokens(self, prompt_len: int, sampling_params: dict[str, Any]) -> int:
        room = self.max_model_len - prompt_len
        if room < 1:
            raise ValueError(
                f"hf rollout: prompt of {prompt_len} tokens leaves no room in max_model_len={self.max_model_len}"
            )
        wanted = sampling_params.get("max_tokens", sampling_params.get("max_new_tokens", self.default_max_tokens))
        return max(1, min(int(wanted), room))

    def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: list[Any] | None = None,
        mm_processor_kwargs: dict | None = None,
    ) -> Generation:
        request = Request(list(prompt_ids), image_data or [])
        return self.generate_batch([request], sampling_params, mm_processor_kwargs)[0]

    @torch.no_grad()
    def generate_batch(
        self, requests: list[Request], sampling_params: dict[str, Any], mm_processor_kwargs: dict | None = None
    ) -> list[Generation]:
        """Generate for several prompts that share sampling params, left-padded into one batch.

        Each row stops at its own end token and its own ``max_tokens``; its log-probs are read from
        its own row of the step logits, so a batched request returns what it would have alone (up to
        float rounding).
        """
        width = max(len(r.prompt_ids) for r in requests)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        input_ids = torch.full((len(requests), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, request in enumerate(requests):
            input_ids[row, width - len(request.prompt_ids) :] = torch.tensor(request.prompt_ids)
            attention_mask[row, width - len(request.prompt_ids) :] = 1
        limits = [self._max_new_tokens(len(r.prompt_ids), sampling_params) for r in requests]
        images = [image for r in requests for image in r.images]
        temperature = float(sampling_params.get("temperature", 1.0))
        do_sample = temperature > 0
        top_k = int(sampling_params.get("top_k", -1))
        stop = sampling_params.get("stop") or None
        eos_ids = sorted(set(self.stop_ids) | set(sampling_params.get("stop_token_ids") or []))
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **self._vision_inputs(input_ids, images, mm_processor_kwargs),
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=float(sampling_params.get("top_p", 1.0)) if do_sample else None,
            top_k=top_k if do_sample and top_k > 0 else None,
            repetition_penalty=float(sampling_params.get("repetition_penalty", 1.0)),
            max_new_tokens=max(limits),
            eos_token_id=eos_ids,
            pad_token_id=pad_id,
            suppress_tokens=self.suppressed_ids or None,
            stop_strings=stop,
            tokenizer=self.tokenizer if stop else None,
            return_dict_in_generate=True,
            output_logits=True,
        )
        want_logprobs = sampling_params.get("logprobs") not in (None, False)
        results = []
        for row, limit in enumerate(limits):
            tokens = out.sequences[row, width:].tolist()[:limit]
            ends = [i for i, t in enumerate(tokens) if t in eos_ids]
            tokens = tokens[: ends[0] + 1] if ends else tokens
            log_probs = self._token_log_probs(out.logits, row, tokens, temperature) if want_logprobs else None
            # vLLM reports both "stop" and "length" as completed to verl
            results.append(Generation(token_ids=tokens, log_probs=log_probs, stop_reason="completed"))
        return results

    def _token_log_probs(
        self, step_logits: tuple[torch.Tensor, ...], row: int, tokens: list[int], temperature: float
    ) -> list[float]:
        """Log-prob of each sampled token, as verl's actor computes it (logits / temperature)."""
        logits = torch.stack([step[row] for step in step_logits[: len(tokens)]]).float()
        if self.logprobs_mode == "processed_logprobs" and temperature > 0:
            logits = logits / temperature
        logp = torch.log_softmax(logits, dim=-1)
        return logp.gather(1, torch.tensor(tokens).unsqueeze(1)).squeeze(1).tolist()

    @torch.no_grad()
    def load_weights(self, named_tensors: dict[str, torch.Tensor]) -> None:
        """Copy the trainer's weights in place; refuse names this model does not have."""
        state = self.model.state_dict()
        unknown = sorted(set(named_tensors) - set(state))
        if unknown:
            raise KeyError(f"hf rollout: weight update has {len(unknown)} names the model lacks, e.g. {unknown[:3]}")
        for name, tensor in named_tensors.items():
            state[name].copy_(tensor.to(state[name].dtype))
        missing = set(state) - set(named_tensors)
        if missing:
            logger.debug(
                "hf rollout: %d weights not in the update (tied or buffers), e.g. %s", len(missing), sorted(missing)[:3]
            )
