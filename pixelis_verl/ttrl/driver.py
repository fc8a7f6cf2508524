"""The TTRL driver: verl's trainer with a request stream where its epochs were.

`TTRLTrainer` is verl's `RayPPOTrainer`: `init_workers` builds the resource pools, the actor/rollout/reference
worker group (our `TTRLWorker`), the agent loop with the pixel tools, the reward loop and the checkpoint
engine exactly as for CC-RFT. `serve()` replaces `fit()` with the online loop, one micro-batch of requests
per step:

    stream -> embed (policy) -> retrieve (buffer) -> rollout n trajectories (agent loop + tools + reward loop)
           -> vote -> store (buffer WAL) -> answer + commit the offset (one ledger transaction)
           -> gate -> update the FSDP actor -> KL(policy || EMA) corridor: accept (EMA absorbs it) or roll back
           -> sync the rollout's weights

A crash loses nothing accepted and repeats nothing answered: an answer and the offset past it commit together
(`ttrl/ledger.py`; a request handed out again is skipped by id), the buffer replays its log, and the actor, its
EMA reference and the corridor restart from the last checkpoint (updates after it are redone by later requests,
not replayed).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import open_dict
from verl import DataProto
from verl.trainer.ppo.ray_trainer import RayPPOTrainer, compute_advantage, compute_response_mask
from verl.trainer.ppo.reward import extract_reward
from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path
from verl.utils.dataset.rl_dataset import collate_fn
from verl.utils.tracking import Tracking

from pixelis_verl.runtime.upstream import compute_old_log_prob, compute_ref_log_prob, rl_rows, update_actor
from pixelis_verl.tools.media import tool_media_limits
from pixelis_verl.trajectory.parse import Trajectory, item_trajectory, response_ids
from pixelis_verl.ttrl.buffer import ExperienceBuffer, normalise
from pixelis_verl.ttrl.config import TTRLConfig
from pixelis_verl.ttrl.corridor import KLCorridor, token_kl
from pixelis_verl.ttrl.durable import replace_text
from pixelis_verl.ttrl.gate import gated, select_update
from pixelis_verl.ttrl.requests import embedding_inputs, request_row
from pixelis_verl.ttrl.retention import prune_checkpoints
from pixelis_verl.ttrl.stream import (
    JsonlDirSource,
    JsonlFileSource,
    RecordLimits,
    Request,
    RequestSource,
    RequestStream,
)
from pixelis_verl.ttrl.vote import Neighbour, VoteResult, actions, vote

# The loop's live progress, one line per request and per update, on the TaskRunner's stdout as "[ttrl] ..." (Ray
# forwards it to the job log). A logger, so an operator can quiet it: logging.getLogger("pixelis_verl.ttrl.progress").
progress = logging.getLogger("pixelis_verl.ttrl.progress")
if not progress.handlers:
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("[ttrl] %(message)s"))
    progress.addHandler(_handler)
    progress.setLevel(logging.INFO)
    progress.propagate = False

STATE_FILE = "ttrl_state.json"


def open_source(path: str, pattern: str) -> RequestSource:
    return JsonlDirSource(path, pattern) if Path(path).is_dir() else JsonlFileSource(path)


class TTRLTrainer(RayPPOTrainer):
    def __init__(self, *args: Any, ttrl: TTRLConfig, **kwargs: Any):
        self.ttrl = ttrl
        super().__init__(*args, **kwargs)
        pixelis = self.config.pixelis
        self.out_dir = Path(pixelis.run_dir) / ttrl.output_dir
        self.data_root = pixelis.data_root
        self.n = int(self.config.actor_rollout_ref.rollout.n)
        self.corridor = KLCorridor(ttrl.corridor)
        self.global_steps = 0  # accepted updates (checkpoints are named by it)
        self.saved_steps = 0  # accepted updates in the last checkpoint
        self.step = 0  # loop steps over this run and the ones it resumes
        self.served = 0  # requests answered by this process
        self.buffer: ExperienceBuffer | None = None  # opened at the first embedding, whose width it takes

    def _create_dataloader(self, *args: Any, **kwargs: Any) -> None:
        """No dataset: requests come from the stream. The optimizer schedule's horizon is the step budget."""
        self.total_training_steps = int(self.config.trainer.total_training_steps)
        with open_dict(self.config):
            self.config.actor_rollout_ref.actor.optim.total_training_steps = self.total_training_steps

    # -- the loop ---------------------------------------------------------------------------------------------
    def serve(self) -> dict[str, float]:
        """Serve the stream until it runs dry (or `stream.max_requests`); returns the last step's metrics."""
        ttrl = self.ttrl
        self.tracking = Tracking(
            project_name=self.config.trainer.project_name,
            experiment_name=self.config.trainer.experiment_name,
            default_backend=self.config.trainer.logger,
        )
        tool_config = self.config.actor_rollout_ref.rollout.multi_turn.tool_config_path
        limits = RecordLimits(tool_media_limits(tool_config, self.data_root), ttrl.stream.max_line_bytes,
                              ttrl.stream.max_images, ttrl.stream.max_record_pixels)  # fmt: skip
        source = open_source(ttrl.stream.path, ttrl.stream.pattern)
        self.stream = RequestStream(source, self.out_dir, limits, ttrl.stream.follow)
        self._resume()
        self.checkpoint_manager.update_weights(self.global_steps)
        metrics: dict[str, float] = {}
        try:
            while ttrl.stream.max_requests is None or self.served < ttrl.stream.max_requests:
                wanted = ttrl.micro_batch
                if ttrl.stream.max_requests is not None:
                    wanted = min(wanted, ttrl.stream.max_requests - self.served)
                requests = self.stream.next_batch(wanted)  # answered ones and duplicates already left out
                if requests:
                    metrics = self._serve_step(requests)
                    self.tracking.log(data=metrics, step=self.step)
                else:
                    if not ttrl.stream.follow:
                        break
                    time.sleep(ttrl.stream.poll_seconds)
        finally:
            self.stream.close()
        if self.global_steps > self.saved_steps:  # the stream ran dry: keep what was learnt since the last save
            self._save()
        elif self.buffer is not None:
            self.buffer.snapshot()
        return metrics

    def _serve_step(self, requests: list[Request]) -> dict[str, float]:
        started = time.perf_counter()
        self.step += 1
        embeddings = self._embed(requests)
        neighbours = [self.buffer.search(e, self.ttrl.buffer.neighbours) if self.ttrl.buffer.neighbours else []
                      for e in embeddings]  # fmt: skip
        batch = self._rollout(requests, neighbours)
        trajectories = [item_trajectory(batch[i], self.tokenizer) for i in range(len(batch))]
        groups = [trajectories[j * self.n : (j + 1) * self.n] for j in range(len(requests))]
        results = [
            vote(group, [Neighbour(tuple(e.payload["actions"]), e.payload["success"], s) for e, s in found],
                 self.ttrl.vote)
            for group, found in zip(groups, neighbours, strict=True)
        ]  # fmt: skip
        gates = [gated(result, group, self.ttrl.gate) for result, group in zip(results, groups, strict=True)]
        self._answer(requests, batch, groups, results, gates, embeddings)
        metrics: dict[str, float] = {
            "ttrl/requests": float(len(requests)),
            "ttrl/gate_rate": float(np.mean(gates)),
            "ttrl/vote_confidence": float(np.mean([r.confidence for r in results])),
            "ttrl/answered_rate": float(np.mean([t.pred is not None for t in trajectories])),
            "ttrl/buffer_size": float(len(self.buffer or ())),
            "ttrl/dead_letters": float(self.stream.dead_letters),
        }
        if self.ttrl.learn and any(gates):
            metrics.update(self._learn(batch, groups, results, gates))
        metrics.update({
            "ttrl/updates": float(self.global_steps),
            "ttrl/rollbacks": float(self.corridor.counts["rollback"]),
            "ttrl/lr_scale": self.corridor.scale,
            "ttrl/step_seconds": time.perf_counter() - started,
        })  # fmt: skip
        metrics["ttrl/requests_per_second"] = len(requests) / metrics["ttrl/step_seconds"]
        return metrics

    def _embed(self, requests: list[Request]) -> np.ndarray:
        inputs = [embedding_inputs(self.processor, r, self.ttrl.shown_max_pixels) for r in requests]
        embeddings = normalise(self.actor_rollout_wg.ttrl_embed(inputs)[0])  # every rank returns the same
        if self.buffer is None:  # restores the snapshot and replays the log
            b = self.ttrl.buffer
            self.buffer = ExperienceBuffer(self.out_dir / "buffer", embeddings.shape[1], b.capacity, b.hnsw_above,
                                           b.hnsw_m, b.ef_search)  # fmt: skip
        return embeddings

    def _rollout(self, requests: list[Request], neighbours: list[list[tuple[Any, float]]]) -> DataProto:
        """n trajectories per request through verl's agent loop (tools, reward loop), rows in request order."""
        rows = []
        for index, (request, found) in enumerate(zip(requests, neighbours, strict=True)):
            chains = [tuple(e.payload["actions"]) for e, _ in found if e.payload["success"]]
            rows.append(request_row(request, index, self.data_root, self.ttrl.shown_max_pixels,
                                    chains[: self.ttrl.update.exemplars]))  # fmt: skip
        dataset = rl_rows(rows, self.config.data, self.processor)
        batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(len(rows))]))
        batch.non_tensor_batch["uid"] = np.array([str(uuid.uuid4()) for _ in rows], dtype=object)
        batch.meta_info["temperature"] = self.config.actor_rollout_ref.rollout.temperature
        gen_batch = self._get_gen_batch(batch)
        gen_batch.meta_info["global_steps"] = self.global_steps
        output = self.async_rollout_manager.generate_sequences(gen_batch.repeat(repeat_times=self.n, interleave=True))
        self.checkpoint_manager.sleep_replicas()
        output.meta_info.pop("timing", None)
        batch = batch.repeat(repeat_times=self.n, interleave=True).union(output)
        if "response_mask" not in batch.batch.keys():
            batch.batch["response_mask"] = compute_response_mask(batch)
        return batch

    def _answer(
        self,
        requests: list[Request],
        batch: DataProto,
        groups: list[list[Trajectory]],
        results: list[VoteResult],
        gates: list[bool],
        embeddings: np.ndarray,
    ) -> None:
        """Store the experiences (durable), write the answers (durable), then commit the stream offsets."""
        records, payloads = [], []
        for j, (request, group, result, gate) in enumerate(zip(requests, groups, results, gates, strict=True)):
            # The heaviest winning trajectory; without an answer, the first one (what the model did).
            best = max(result.winners, key=lambda i: result.weights[i], default=0)
            text = self.tokenizer.decode(response_ids(batch[j * self.n + best]), skip_special_tokens=True)
            chain = list(actions(group[best]))
            records.append({"id": request.id, "source": request.position[0], "offset": request.position[1],
                            "answer": result.answer, "confidence": round(result.confidence, 4),
                            "gated": gate, "trajectory": text, "actions": chain, "policy_version": self.global_steps,
                            "step": self.step})  # fmt: skip
            payloads.append({"request_id": request.id, "answer": result.answer, "actions": chain, "success": gate,
                             "length": group[best].response_tokens})  # fmt: skip
            progress.info("step %d request %s: answer %r confidence %.2f -> %s", self.step, request.id, result.answer,
                          result.confidence, "update" if gate and self.ttrl.learn else "answer only")  # fmt: skip
        # Experience before answer: a crash between the two repeats the request (one more experience for it), where
        # the other order lost the experience for good (the answered request is skipped on restart).
        self.buffer.add_many(embeddings, [r.confidence for r in results], payloads)
        self.stream.answer(requests, records)  # answers and the stream position: one transaction
        self.served += len(requests)
        if self.served % self.ttrl.buffer.snapshot_every < len(requests):
            self.buffer.snapshot()

    # -- learning ---------------------------------------------------------------------------------------------
    def _learn(
        self, batch: DataProto, groups: list[list[Trajectory]], results: list[VoteResult], gates: list[bool]
    ) -> dict[str, float]:
        """One GRPO update on the gated groups, checked by the corridor; returns its metrics."""
        rows = [j * self.n + i for j, gate in enumerate(gates) if gate for i in range(self.n)]
        update = batch.select_idxs(rows)
        labels, trained = [], []
        for j, gate in enumerate(gates):
            if gate:
                selection = select_update(groups[j], results[j], self.ttrl.update.positives,
                                          self.ttrl.update.label_weight)  # fmt: skip
                labels += selection.labels
                trained += selection.trained
        self._set_rewards(update, torch.tensor(labels), torch.tensor(trained))
        update.meta_info["global_token_num"] = torch.sum(update.batch["attention_mask"], dim=-1).tolist()
        update.meta_info["images_seqlens"] = [
            n for inputs in update.non_tensor_batch["multi_modal_inputs"] if "image_grid_thw" in inputs
            for n in inputs["images_seqlens"].tolist()
        ]  # fmt: skip
        old_log_prob, _ = compute_old_log_prob(self, update)
        old_log_prob.batch.pop("entropys")
        update = update.union(old_log_prob).union(compute_ref_log_prob(self, update))
        metrics = {"ttrl/rollout_policy_gap": self._rollout_gap(update)}
        self.actor_rollout_wg.ttrl_snapshot()
        actor_output = update_actor(self, update)
        new_log_prob, _ = compute_old_log_prob(self, update)
        kl = token_kl(new_log_prob.batch["old_log_probs"], update.batch["ref_log_prob"],
                      update.batch["response_mask"], self.ttrl.corridor.estimator)  # fmt: skip
        decision = self.corridor.decide(kl)
        if decision.action == "rollback":
            self.actor_rollout_wg.ttrl_restore()
        else:
            self.actor_rollout_wg.ttrl_ema_update(self.ttrl.corridor.ema_decay)
            self.global_steps += 1
        self.actor_rollout_wg.ttrl_set_lr_scale(decision.scale)
        self.checkpoint_manager.update_weights(self.global_steps)
        if decision.action != "rollback" and self.global_steps % self.ttrl.checkpoint_every == 0:
            self._save()
        progress.info("step %d: update on %d request(s), KL(policy||EMA) %.5f -> %s, lr scale %.3g", self.step,
                      sum(gates), kl, decision.action, decision.scale)  # fmt: skip
        metrics.update({f"ttrl/corridor_{action}": float(decision.action == action) for action in self.corridor.counts})
        metrics.update({"ttrl/kl": kl, "ttrl/update_trajectories": float(sum(trained))})
        metrics.update(actor_output.meta_info["metrics"])
        return _scalars(metrics)

    def _set_rewards(self, update: DataProto, labels: torch.Tensor, trained: torch.Tensor) -> None:
        """Token rewards (components + pseudo-label at the last response token) and GRPO advantages over the
        trained trajectories of each group; the others get no loss."""
        mask = update.batch["response_mask"]
        scores, _ = extract_reward(update)
        last = (mask.sum(-1) - 1).clamp(min=0)
        scores = scores.clone()
        scores[torch.arange(len(update)), last] += labels.to(scores.dtype)
        update.batch["token_level_scores"] = update.batch["token_level_rewards"] = scores
        rows = torch.nonzero(trained).flatten().tolist()
        subset = compute_advantage(
            update.select_idxs(rows),
            adv_estimator=self.config.algorithm.adv_estimator,
            num_repeat=self.n,
            norm_adv_by_std_in_grpo=self.config.algorithm.get("norm_adv_by_std_in_grpo", True),
            config=self.config.algorithm,
        )
        for key in ("advantages", "returns"):
            full = torch.zeros_like(scores)
            full[rows] = subset.batch[key]
            update.batch[key] = full
        update.batch["response_mask"] = mask * trained[:, None].to(mask.dtype)

    @staticmethod
    def _rollout_gap(update: DataProto) -> float:
        """Mean |rollout log-prob - actor log-prob| of the sampled tokens: ~0 when the rollout runs the actor's
        weights (nan when the rollout returns no log-probs)."""
        if "rollout_log_probs" not in update.batch.keys():
            return float("nan")
        mask = update.batch["response_mask"].float()
        gap = (update.batch["rollout_log_probs"] - update.batch["old_log_probs"]).abs() * mask
        return float(gap.sum() / mask.sum().clamp(min=1))

    # -- persistence ------------------------------------------------------------------------------------------
    def _checkpoint_root(self) -> Path:
        return Path(self.config.trainer.default_local_dir)

    def _save(self) -> None:
        """Actor (verl's checkpoint), EMA reference, corridor and loop state, buffer snapshot; then mark it latest and
        prune older checkpoints whole (`ttrl/retention.py`; verl's own pruning would leave EMA and state behind)."""
        folder = self._checkpoint_root() / f"global_step_{self.global_steps}"
        self.actor_rollout_wg.save_checkpoint(str(folder / "actor"), None, self.global_steps, max_ckpt_to_keep=None)
        self.actor_rollout_wg.ttrl_save_ema(str(folder / "ema"))
        state = {"step": self.step, "scale": self.corridor.scale, "counts": self.corridor.counts}
        (folder / STATE_FILE).write_text(json.dumps(state))
        if self.buffer is not None:
            self.buffer.snapshot()
        # Marked last: a crash mid-save leaves the previous checkpoint the latest.
        replace_text(self._checkpoint_root() / "latest_checkpointed_iteration.txt", str(self.global_steps))
        self.saved_steps = self.global_steps
        prune_checkpoints(self._checkpoint_root(), self.config.trainer.get("max_actor_ckpt_to_keep"), self.global_steps)

    def _resume(self) -> None:
        """Restore the actor, its EMA reference and the corridor from the last checkpoint, if any."""
        folder = find_latest_ckpt_path(str(self._checkpoint_root()))
        if folder is not None:
            self.global_steps = self.saved_steps = int(folder.rsplit("global_step_", 1)[-1])
            self.actor_rollout_wg.load_checkpoint(os.path.join(folder, "actor"))
            self.actor_rollout_wg.ttrl_load_ema(os.path.join(folder, "ema"))
            state = json.loads(Path(folder, STATE_FILE).read_text())
            self.step, self.corridor.scale = state["step"], state["scale"]
            self.corridor.counts.update(state["counts"])
            self.actor_rollout_wg.ttrl_set_lr_scale(self.corridor.scale, already_applied=True)
            progress.info("resumed from %s: %d accepted updates", folder, self.global_steps)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """Tracking takes numbers: lists (per micro-batch values) become their mean."""
    return {k: float(np.mean(v)) if isinstance(v, list | tuple) else float(v) for k, v in metrics.items()}
