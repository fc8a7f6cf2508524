"""A small byte-level BPE tokenizer with Qwen's special tokens, trained locally for the tiny test models.

Real Qwen tokenizers have 151k entries, which would make the embedding and LM head dominate a model with hidden size
128. This one keeps everything a Qwen-VL pipeline depends on — the ChatML and vision special tokens, the hermes
tool-call tags, Qwen's pre-tokenizer (which isolates every digit, so numbers are learnable one digit at a time) and
the `Qwen2Tokenizer` class — while the vocabulary is trained on text the tiny models will actually see.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerBase

# Qwen2Tokenizer rebuilds its pre-tokenizer from this regex on load, so training must use the same one.
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

# Qwen order: the special tokens of Qwen2.5-VL, then the tags Qwen adds as plain added tokens.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Non-special, like Qwen: they survive `decode(..., skip_special_tokens=True)`, so tool parsers still see them.
TAG_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]

_ADDED_TOKEN_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS + TAG_TOKENS))

_COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "grey", "cyan"]
_SHAPES = ["square", "circle", "triangle", "star", "ring", "diamond", "cross", "dot", "box", "line"]
_OBJECTS = ["car", "sign", "cup", "book", "dog", "cat", "tree", "house", "person", "ball", "clock", "bottle", "word"]
_PLACES = ["top left", "top right", "bottom left", "bottom right", "centre", "left edge", "right edge", "middle"]
# Common English words, so free text in prompts and answers is not spelled out byte by byte.
_WORDS = """
a about above after again all also an and any are around as at away back be because been before behind below
best between big black both bottom box bright but by can centre change check clear close colour come corner could
count crop dark detail different do does down each edge else enough every far few find first for from front get
give go good great half has have he her here high his how i if image in inside into is it its just large last
left less let like line little long look low make many may me more most move much must my near need new next no
not now number object of off on one only open or other our out outside over own part people picture place point
put read region right same say see seen shape she should show side size small so some something still such take
text than that the their them then there these they thing think this those three through time to too top two
under up us use very view want was way we well were what when where which while white who why will with within
word would yes yet you your zero one two three four five six seven eight nine ten hundred thousand answer
question tool call result error frame video second first last object mask segment property properties area aspect
orientation position dominant circularity relative track tracked lost displacement select window timestamp
""".split()
_TOOL_ARGS = {
    "zoom_in": ["bbox_2d", "image_index"],
    "segment_object_at": ["point_2d", "image_index"],
    "get_properties": ["mask_id", "bbox_2d"],
    "read_text": ["bbox_2d", "image_index"],
    "track_object": ["bbox_2d", "mask_id", "start_frame", "end_frame"],
    "select_frames": ["start_s", "end_s", "start_frame", "end_frame", "num_frames"],
}


def generic_corpus(seed: int, num_lines: int = 4000) -> list[str]:
    """English questions and answers, numbers and JSON tool calls for every pixelis tool, so none is split to bytes."""
    rng = random.Random(seed)
    lines: list[str] = []
    for _ in range(num_lines):
        colour, shape, obj, place = rng.choice(_COLOURS), rng.choice(_SHAPES), rng.choice(_OBJECTS), rng.choice(_PLACES)
        number = rng.randint(0, 2000)
        name = rng.choice(list(_TOOL_ARGS))
        args = {arg: [rng.randint(0, 999) for _ in range(4 if "bbox" in arg else 2)] for arg in _TOOL_ARGS[name]}
        lines += [
            f"What colour is the {shape} in the {place} of the image?",
            f"The {shape} is {colour}. The answer is <answer>{colour}</answer>",
            f"How many {obj}s are there? There are {number} {obj}s in the picture.",
            f"What is written on the {obj} near the {place}? It says {obj.upper()} {number}.",
            f"Let me zoom in on the {colour} {shape} to see it better.",
            f"Zoomed in on [{number}, {number // 2}, {number + 40}, {number // 2 + 40}] in source pixels.",
            json.dumps({"name": name, "arguments": args}),
            f"Error: {name}: bbox_2d must be [x1, y1, x2, y2] with x1 < x2; got [{number}, 0, {number}, 5]",
            " ".join(rng.choices(_WORDS, k=12)).capitalize() + rng.choice([".", "?", "!", ","]),
            # Line-initial and capitalised forms are distinct pre-tokens in byte-level BPE.
            "\n".join(w.capitalize() if rng.random() < 0.5 else w for w in rng.choices(_WORDS, k=6)),
            " ".join(w.capitalize() for w in rng.choices(_WORDS, k=6)),
        ]
    return lines


def _pieces_without_added_tokens(texts: Iterable[str]) -> Iterator[str]:
    """Special tokens are added whole after training; they must not teach BPE merges like `<|` or `im`."""
    for text in texts:
        yield from (piece for piece in _ADDED_TOKEN_RE.split(text) if piece)


def train_tokenizer(texts: Iterable[str], out_dir: Path, vocab_size: int = 3000) -> PreTrainedTokenizerBase:
    """Train a byte-level BPE on `texts`, save it as a Qwen2Tokenizer in `out_dir` and return it reloaded from disk."""
    from transformers import AutoTokenizer, Qwen2Tokenizer

    backend = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS) - len(TAG_TOKENS),
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_pieces_without_added_tokens(texts), trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    vocab = dict(model["vocab"])
    for token in SPECIAL_TOKENS + TAG_TOKENS:  # appended in Qwen's order, after the BPE entries
        vocab[token] = len(vocab)

    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        errors="replace",
    )
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS], special_tokens=True)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return AutoTokenizer.from_pretrained(out_dir)
