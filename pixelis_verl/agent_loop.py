"""``pixelis_tool_agent``: verl's ``ToolAgentLoop`` plus step records, tool state and GRPO-group figures.

Our tools append a step record per call to ``extra_fields["pixelis_steps"]``. A trajectory that
never calls a tool would lack the key, and verl joins the outputs of its agent-loop workers with
``DataProto.concat``, which fails when one worker's batch has a key another's lacks. Every
trajectory therefore leaves this loop with the key, an empty list when no tool was called.

Tools keep cross-call state (masks, frame images) keyed on the trajectory's request id
(``pixelis_verl.tools.state``); this loop frees it when the trajectory ends, however it ends.
verl instantiates one loop per trajectory, so the id the loop made is remembered on the instance.

Group statistics. Some reward terms are defined over the GRPO group of a prompt (Pixel-Reasoner's
rate-based curiosity needs the group's rate of tool use), but verl 0.9.1 scores each trajectory on
its own, as it finishes. verl's v1 agent loop runs all n trajectories of a prompt (one ``uid``) as
sibling tasks of one worker process, started together; so each trajectory here joins its group on
start, waits at the end until every sibling has finished (or failed), and leaves the group's
figures in ``extra_fields["pixelis_group"]``, which the reward reads. The v0 trainer splits a batch
across workers by rows, so a group can be split; its statistics then cover the siblings in this
worker, and ``size`` says how many that was.

Wall time. The seconds from start to finish (before the group wait) go to ``extra_fields["pixelis_seconds"]``
for evaluation reports.

No tools. verl reads an empty ``extra_info.tool_selection`` as "every tool"; here it means none: the prompt
carries no tool schemas and any call the model still writes gets verl's unknown-tool reply. Evaluation's
tool-free control runs this way, through the same loop.

Registered through ``conf/agent_loops.yaml`` (``actor_rollout_ref.rollout.agent.agent_loop_config_path``),
which verl loads in each agent-loop worker only.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput
from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

from pixelis_verl.runtime.upstream import make_request_id
from pixelis_verl.tools.state import release_trajectory
from pixelis_verl.trajectory.steps import GROUP_KEY, SECONDS_KEY, STEPS_KEY, uses_pixel_ops


@dataclass
class _Group:
    started: int = 0
    used_pixel_ops: list[bool] = field(default_factory=list)  # one entry per finished trajectory that succeeded
    ended: int = 0  # finished or failed
    done: asyncio.Event = field(default_factory=asyncio.Event)


_GROUPS: dict[str, _Group] = {}  # uid -> the group's trajectories running in this process


class PixelisToolAgentLoop(ToolAgentLoop):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._request_ids: list[str] = []

    def _make_request_id(self, priority: int, full_determinism: bool) -> str:
        request_id = make_request_id(priority, full_determinism)
        self._request_ids.append(request_id)
        return request_id

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        uid = kwargs.get("uid")
        uid = str(uid) if uid is not None else None
        group = _GROUPS.setdefault(uid, _Group()) if uid is not None else _Group()
        group.started += 1
        output = None
        started = time.perf_counter()
        try:
            output = await super().run(sampling_params, **_without_tools_if_asked(kwargs))
            output.extra_fields.setdefault(STEPS_KEY, [])
            output.extra_fields[SECONDS_KEY] = time.perf_counter() - started
            group.used_pixel_ops.append(uses_pixel_ops(output.extra_fields[STEPS_KEY]))
        finally:
            while self._request_ids:
                release_trajectory(self._request_ids.pop())
            group.ended += 1
            if group.ended == group.started:
                group.done.set()
                _GROUPS.pop(uid, None)
        await group.done.wait()
        used = group.used_pixel_ops
        output.extra_fields[GROUP_KEY] = {
            "size": group.started,
            "pixel_op_rate": sum(used) / len(used),
        }
        return output


_NO_TOOL = ""  # a tool name no tool has: verl's selection then keeps none


def _without_tools_if_asked(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with an empty tool selection made one that selects nothing (see the module docstring)."""
    extra_info = kwargs.get("extra_info") or {}
    if extra_info.get("tool_selection") is None or len(extra_info["tool_selection"]) > 0:
        return kwargs
    return {**kwargs, "extra_info": {**extra_info, "tool_selection": [_NO_TOOL]}}
