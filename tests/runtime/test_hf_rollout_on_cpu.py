"""The ``hf`` rollout: generation, log-probs, vision-token suppression, and weight sync through Ray."""

import asyncio

import pytest
import ray
import torch
from PIL import Image
from verl.utils import hf_processor, hf_tokenizer
from verl.workers.config import HFModelConfig, RolloutConfig

from pixelis_verl.runtime.hf_generation import HFGenerator, Request, load_policy_model
from pixelis_verl.runtime.hf_rollout import HFRolloutServer, HFServerAdapter, server_actor_name
from pixelis_verl.tiny.build import tiny_model_path

SAMPLE = {"temperature": 0.7, "top_p": 1.0, "top_k": -1, "logprobs": True, "max_tokens": 12}
GREEDY = {"temperature": 0.0, "logprobs": True, "max_tokens": 12}


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def model_dir(request):
    return str(tiny_model_path(request.param))


@pytest.fixture(scope="module")
def processor(model_dir):
    return hf_processor(model_dir, trust_remote_code=True)


@pytest.fixture()
def generator(model_dir, processor):
    tokenizer = hf_tokenizer(model_dir, trust_remote_code=True)
    model = load_policy_model(model_dir, dtype="float32", trust_remote_code=True)
    return HFGenerator(model, tokenizer, processor, max_model_len=2048, default_max_tokens=32)


def _image_prompt(processor, image):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is it?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    return inputs["input_ids"][0].tolist(), inputs


def test_generation_without_images_returns_tokens_and_log_probs(generator):
    prompt = generator.tokenizer.encode("Where is the small word?")
    out = generator.generate(prompt, dict(SAMPLE))
    assert 1 <= len(out.token_ids) <= SAMPLE["max_tokens"]
    assert len(out.log_probs) == len(out.token_ids)
    assert out.stop_reason == "completed"


def test_log_probs_match_a_forward_pass_with_images(generator, processor):
    image = Image.new("RGB", (320, 240), (200, 40, 40))
    prompt, inputs = _image_prompt(processor, image)
    out = generator.generate(prompt, dict(SAMPLE), image_data=[image])
    full = torch.tensor([prompt + out.token_ids])
    with torch.no_grad():
        logits = generator.model(
            input_ids=full,
            attention_mask=torch.ones_like(full),
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
            mm_token_type_ids=(full == generator.image_token_id).long(),  # what verl's actor uses for M-RoPE
        ).logits[0, len(prompt) - 1 : -1]
    expected = torch.log_softmax(logits / SAMPLE["temperature"], dim=-1)
    expected = expected.gather(1, torch.tensor(out.token_ids).unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(torch.tensor(out.log_probs), expected, atol=1e-4, rtol=1e-4)


def test_generation_stops_at_max_tokens_and_at_requested_stop_tokens(generator):
    prompt = generator.tokenizer.encode("Where is the small word?")
    free = generator.generate(prompt, {**GREEDY, "max_tokens": 6})
    assert len(free.token_ids) <= 6
    stop_at = free.token_ids[2]
    stopped = generator.generate(prompt, {**GREEDY, "max_tokens": 6, "stop_token_ids": [stop_at]})
    first = free.token_ids.index(stop_at)
    assert stopped.token_ids == free.token_ids[: first + 1]


def test_vision_special_tokens_are_never_sampled(generator):
    image_pad = generator.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    with torch.no_grad():  # make <|image_pad|> the model's overwhelming favourite
        generator.model.get_output_embeddings().weight[image_pad] *= 1000
    out = generator.generate(generator.tokenizer.encode("hello"), dict(GREEDY))
    assert image_pad not in out.token_ids


def test_prompt_longer_than_the_context_is_refused(generator):
    with pytest.raises(ValueError, match="max_model_len"):
        generator.generate([1] * 4096, dict(GREEDY))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_server_serves_the_weights_the_trainer_sends(local_ray, monkeypatch):
    model_dir = str(tiny_model_path("qwen2_5_vl"))
    processor = hf_processor(model_dir)
    config = RolloutConfig(
        name="hf", prompt_length=1024, response_length=64, dtype="float32", tensor_model_parallel_size=1
    )
    model_config = HFModelConfig(path=model_dir, trust_remote_code=True)
    server = (
        ray.remote(HFRolloutServer)
        .options(name=server_actor_name(0))
        .remote(config=config, model_config=model_config, replica_rank=0)
    )
    image = Image.new("RGB", (320, 240), (40, 40, 200))
    prompt, _ = _image_prompt(processor, image)

    def ask():
        return ray.get(server.generate.remote(prompt, dict(GREEDY), request_id="r", image_data=[image]))

    before = ask()
    trained = load_policy_model(model_dir, dtype="float32", trust_remote_code=True)
    torch.manual_seed(0)
    weights = [(name, p.detach() + 0.05 * torch.randn_like(p)) for name, p in trained.named_parameters()]

    monkeypatch.setenv("RANK", "0")
    adapter = HFServerAdapter(config=config, model_config=model_config, device_mesh=None)
    asyncio.run(adapter.update_weights(iter(weights), global_steps=3))
    after = ask()

    assert after.extra_fields["global_steps"] == 3
    assert after.token_ids != before.token_ids or after.log_probs != before.log_probs
    reference = HFGenerator(trained, hf_tokenizer(model_dir), processor, max_model_len=2048, default_max_tokens=12)
    with torch.no_grad():
        for name, tensor in weights:
            trained.get_parameter(name).copy_(tensor)
    expected = reference.generate(prompt, dict(GREEDY), image_data=[image])
    assert after.token_ids == expected.token_ids
    ray.kill(server)


def test_a_batch_returns_what_each_request_returns_alone(generator, processor):
    red, green = Image.new("RGB", (320, 240), (200, 40, 40)), Image.new("RGB", (448, 448), (40, 160, 40))
    requests = [
        Request(_image_prompt(processor, red)[0], [red]),
        Request(generator.tokenizer.encode("Where is the small word?"), []),
        Request(_image_prompt(processor, green)[0], [green]),
    ]
    alone = [generator.generate_batch([r], dict(GREEDY))[0] for r in requests]
    together = generator.generate_batch(requests, dict(GREEDY))
    for a, b in zip(alone, together, strict=True):
        assert a.token_ids == b.token_ids
        torch.testing.assert_close(torch.tensor(a.log_probs), torch.tensor(b.log_probs), atol=1e-4, rtol=1e-4)
