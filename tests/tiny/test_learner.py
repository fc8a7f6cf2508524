"""The learner model tier's sizes and build bookkeeping (the build itself, ~45 minutes, is `make learner`)."""

import json

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoTokenizer

from pixelis_verl.tiny import learner
from pixelis_verl.tiny.build import FAMILIES, SIZES, _config, tiny_model_path


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sizes_give_a_1_5m_tiny_and_a_7m_learner_with_m_rope_sections_filling_half_a_head(family):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path(family))
    expected = {"tiny": (1.4e6, 1.7e6), "learner": (6.5e6, 7.5e6)}
    for size, (low, high) in expected.items():
        config = _config(FAMILIES[family], tokenizer, SIZES[size])
        sections = config.text_config.rope_parameters["mrope_section"]
        assert sum(sections) == SIZES[size].hidden // SIZES[size].heads // 2
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(config)
        assert low < sum(p.numel() for p in model.parameters()) < high, size


def test_a_learner_build_is_current_only_with_this_builder_version(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELIS_LEARNER_DIR", str(tmp_path))
    path = learner.learner_root() / "qwen2_5_vl"
    path.mkdir(parents=True)
    assert learner.read_marker(path) is None
    (path / learner.MARKER).write_text(json.dumps({"learner_version": learner.LEARNER_VERSION - 1}))
    assert learner.read_marker(path) is None  # stale: rebuilt on next use
    (path / learner.MARKER).write_text(json.dumps({"learner_version": learner.LEARNER_VERSION, "sft_steps": 3}))
    assert learner.read_marker(path)["sft_steps"] == 3 and learner.learner_model_path("qwen2_5_vl") == path


def test_a_learner_build_never_overwrites_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no pixelis_learner.json"):
        learner.build_learner("qwen2_5_vl", tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
