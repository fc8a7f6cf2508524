"""The ``hf`` rollout for verl: an HF-transformers server, its replica, and the in-worker adapter.

verl 0.9.1 serves rollouts from vLLM/SGLang/TRT-LLM servers only. This module registers ``hf``
in the same three places a vLLM rollout lives, so ``actor_rollout_ref.rollout.name=hf`` runs the
agent loop, tools and weight sync unchanged on machines without those engines:

- ``HFRolloutServer``: a Ray actor with the methods verl calls on a vLLM server (``generate`` and
  the lifecycle calls); it holds the model and answers token-in/token-out requests.
- ``HFReplica`` (``RolloutReplicaRegistry``): launches one server per rollout replica.
- ``HFServerAdapter`` (``get_rollout_class``): lives in each trainer process; after every actor
  update verl's naive checkpoint engine hands it the new weights, which it forwards to its server.
  Every rank must drain the weight generator (FSDP ``full_tensor`` is a collective), rank 0 of each
  replica sends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import ray
import torch
from verl.utils import hf_processor, hf_tokenizer
from verl.utils.fs import copy_to_local
from verl.workers.config import HFModelConfig, RolloutConfig
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput
from verl.workers.rollout.utils import ensure_async_iterator

from pixelis_verl.runtime.hf_generation import HFGenerator, Request, load_policy_model
from pixelis_verl.runtime.lora_weights import LoraWeights

logger = logging.getLogger(__name__)


def server_actor_name(replica_rank: int, node_rank: int = 0) -> str:
    return f"pixelis_hf_server_{replica_rank}_{node_rank}"


@dataclass(eq=False)  # identity: two trajectories may send identical requests
class _Pending:
    request: Request
    sampling_params: dict[str, Any]
    mm_processor_kwargs: dict[str, Any] | None
    future: asyncio.Future

    def batch_key(self) -> str:
        """Requests batch together only when they sample the same way."""
        return repr((sorted(self.sampling_params.items()), sorted((self.mm_processor_kwargs or {}).items())))


class HFRolloutServer:
    """Ray actor serving token-in/token-out generation from one HF model, with dynamic batching.

    The agent loop sends every trajectory's turn as its own request. Requests that arrive within
    ``engine_kwargs.hf.batch_wait_ms`` of each other and share sampling params run as one left-padded
    ``generate`` (at most ``max_num_seqs`` rows), in a worker thread so the actor keeps accepting
    calls. A weight update waits for the running batch and is never interleaved with one.
    """

    def __init__(self, config: RolloutConfig, model_config: HFModelConfig, replica_rank: int) -> None:
        self.config = config
        self.replica_rank = replica_rank
        local_path = copy_to_local(model_config.path, use_shm=model_config.use_shm)
        trust = model_config.trust_remote_code
        tokenizer = hf_tokenizer(local_path, trust_remote_code=trust)
        processor = hf_processor(local_path, trust_remote_code=trust)
        model = load_policy_model(local_path, dtype=config.dtype, trust_remote_code=trust)
        max_model_len = config.max_model_len or (config.prompt_length + config.response_length)
        self.generator = HFGenerator(
            model,
            tokenizer,
            processor,
            max_model_len=max_model_len,
            default_max_tokens=config.response_length,
            logprobs_mode=config.logprobs_mode or "processed_logprobs",
        )
        engine_kwargs = (config.engine_kwargs or {}).get(config.name) or {}  # the name it is registered under
        self.batch_wait_s = float(engine_kwargs.get("batch_wait_ms", 20)) / 1000
        self.max_batch = max(1, int(config.max_num_seqs))
        self.global_steps: int | None = None
        self._lock = asyncio.Lock()
        self._lora = LoraWeights()  # used when the actor trains LoRA adapters
        self._pending: list[_Pending] = []
        self._drainer: asyncio.Task | None = None
        torch.manual_seed(config.seed + replica_rank)

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: list[Any] | None = None,
        video_data: list[Any] | None = None,
        audio_data: list[Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        **_ignored: Any,
    ) -> TokenOutput:
        if video_data or audio_data:
            raise ValueError("hf rollout: video and audio inputs are not supported; send frames as images")
        future = asyncio.get_running_loop().create_future()
        request = Request(list(prompt_ids), list(image_data or []))
        self._pending.append(_Pending(request, dict(sampling_params), mm_processor_kwargs, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        gen = await future
        return TokenOutput(
            token_ids=gen.token_ids,
            log_probs=gen.log_probs,
            stop_reason=gen.stop_reason,
            extra_fields={"global_steps": self.global_steps},
        )

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(self.batch_wait_s)  # let the other trajectories' requests arrive
            key = self._pending[0].batch_key()
            batch = [p for p in self._pending if p.batch_key() == key][: self.max_batch]
            self._pending = [p for p in self._pending if p not in batch]
            first = batch[0]
            async with self._lock:
                try:
                    results = await asyncio.to_thread(
                        self.generator.generate_batch,
                        [p.request for p in batch],
                        first.sampling_params,
                        first.mm_processor_kwargs,
                    )
                except Exception as exc:  # every waiting trajectory gets the error, the server goes on
                    for p in batch:
                        p.future.set_exception(exc)
                    continue
            for p, result in zip(batch, results, strict=True):
                p.future.set_result(result)

    async def update_weights(
        self,
        named_tensors: dict[str, torch.Tensor],
        global_steps: int | None = None,
        peft_config: dict[str, Any] | None = None,
        base_sync_done: bool = True,
    ) -> None:
        """Load the trainer's weights; with `peft_config` (the actor trains LoRA adapters) the first sync is the base
        and later ones are adapters, merged here (`runtime/lora_weights.py`)."""
        async with self._lock:
            if peft_config is not None and not base_sync_done:
                named_tensors = self._lora.base(named_tensors)
            elif peft_config is not None:
                named_tensors = self._lora.merged(named_tensors, peft_config, self.generator.model.state_dict())
            self.generator.load_weights(named_tensors)
            if global_steps is not None:
                self.global_steps = global_steps

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # Lifecycle calls verl makes on every rollout server. The HF model keeps its weights and has no
    # KV cache between requests, so there is nothing to free or restore.
    async def wake_up(self, tags: list[str] | None = None) -> None:
        pass

    async def sleep(self) -> None:
        pass

    async def clear_kv_cache(self) -> None:
        pass

    async def release_kv_cache(self) -> None:
        pass

    async def resume_kv_cache(self) -> None:
        pass

    async def wait_for_requests_to_drain(self) -> None:
        if self._drainer is not None:
            await asyncio.wait([self._drainer])

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        pass

    async def start_profile(self, **_kwargs: Any) -> None:
        pass

    async def stop_profile(self) -> None:
        pass


class HFReplica(RolloutReplica):
    """One ``HFRolloutServer`` per replica, placed on the node of the replica's first worker."""

    async def launch_servers(self) -> None:
        if self.nnodes != 1:
            raise ValueError("hf rollout: a replica must fit on one node (tensor_model_parallel_size <= gpus per node)")
        node_id = None
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda _self: ray.get_runtime_context().get_node_id())
        options: dict[str, Any] = {
            "name": server_actor_name(self.replica_rank),
            "max_concurrency": self.max_concurrency,
        }
        if node_id is not None:
            options["scheduling_strategy"] = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                node_id=node_id, soft=False
            )
        server = (
            ray.remote(HFRolloutServer)
            .options(**options)
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        await server.set_global_steps.remote(0)  # waits for the model to load
        self.servers = [server]
        self._server_handle = server
        # verl's load balancer keys servers by address; the actor name is unique per replica.
        self._server_address = server_actor_name(self.replica_rank)

    def rollout_worker_use_gpu(self) -> bool:
        return False


class HFServerAdapter(BaseRollout):
    """In-trainer side of the ``hf`` rollout: forwards the actor's weights to this replica's server."""

    def __init__(self, config: RolloutConfig, model_config: HFModelConfig, device_mesh: Any, replica_rank: int = -1):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", 0))
        world = self.config.tensor_model_parallel_size * self.config.data_parallel_size
        world *= self.config.pipeline_model_parallel_size
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self._is_sender = rank % world == 0
        self._server: Any = None

    def _server_handle(self) -> Any:
        if self._server is None:
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def update_weights(
        self,
        weights: Iterable[tuple[str, torch.Tensor]] | AsyncIterator[tuple[str, torch.Tensor]],
        global_steps: int | None = None,
        wire_format: str = "named_tensors",
        peft_config: dict[str, Any] | None = None,
        base_sync_done: bool = True,
        **_kwargs: Any,
    ) -> None:
        if wire_format != "named_tensors":
            raise ValueError(f"hf rollout: only wire_format='named_tensors' is supported; got {wire_format!r}")
        named: dict[str, torch.Tensor] = {}
        async for name, tensor in ensure_async_iterator(weights):  # every rank drains: full_tensor is collective
            if self._is_sender:
                named[name] = tensor.detach().to("cpu").clone()
        if self._is_sender:
            await self._server_handle().update_weights.remote(named, global_steps, peft_config, base_sync_done)

    async def resume(self, tags: list[str]) -> None:
        pass

    async def release(self) -> None:
        pass
