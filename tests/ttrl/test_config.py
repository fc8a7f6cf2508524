"""The `ttrl` block fails at startup naming the wrong key, and TTRL's needs of the rest of the recipe are checked."""

import pytest

from pixelis_verl.config import RecipeError, check, compose_recipe, resolve
from pixelis_verl.ttrl.config import ttrl_config


def _compose(*overrides: str):
    return resolve(compose_recipe("ttrl_tiny_cpu", ["pixelis.run_dir=/tmp/ttrl-config-test", *overrides]))


def test_the_tiny_recipe_builds_its_config():
    config = ttrl_config(_compose())
    assert config.vote.strategy == "trajectory" and config.corridor.upper == 0.02 and config.micro_batch == 2
    assert config.shown_max_pixels == 65536  # the model group's processor size (tiny Qwen3-VL)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+ttrl.vote.stratgy=majority", "ttrl.vote: unknown key(s) ['stratgy']"),
        ("ttrl.vote.strategy=plurality", "ttrl.vote.strategy must be one of"),
        ("ttrl.corridor.upper=0.001", "ttrl.corridor: need 0 <= lower < upper"),
        ("ttrl.stream.path=null", "ttrl.stream.path: not set"),
        ("ttrl.gate.threshold=1.5", "ttrl.gate.threshold must be in [0, 1]"),
        ("actor_rollout_ref.rollout.n=3", "actor_rollout_ref.rollout.n (3) must be a multiple of the actor's ranks"),
        ("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4", "ref.log_prob_micro_batch_size_per_gpu (4)"),
        ("actor_rollout_ref.actor.use_kl_loss=false", "actor_rollout_ref.actor.use_kl_loss"),
    ],
)
def test_a_bad_ttrl_setting_fails_naming_its_key(override, message):
    with pytest.raises(RecipeError) as error:
        check(_compose(override))
    assert message in str(error.value)
