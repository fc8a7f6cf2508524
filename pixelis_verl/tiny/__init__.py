"""Model tiers built on this machine, never downloaded: the tiny CI models and the learner.

`build`: the tiny Qwen2.5-VL / Qwen3-VL builder and its cache (`python -m pixelis_verl.tiny`); `tokenizer`: the
locally trained BPE; `warm_start`: the tiny models' short supervised start; `learner`: the ~7M-parameter
learner tier, taught the card task family by phase-1 SFT (`make learner`). Above `runtime/` (it uses the
processor) and below the phases.
"""
