"""``pixelis_tool_agent``: verl's ``ToolAgentLoop`` with pixelis' per-trajectory step records and tool state.

Our tools append a step record per call to ``extra_fields["pixelis_steps"]``. A trajectory that
never calls a tool would lack the key, and verl joins the outputs of its agent-loop workers with
``DataProto.concat``, which fails when one worker's batch has a key another's lacks. Every
trajectory therefore leaves this loop with the key, an empty list when no tool was called.

Tools keep cross-call state (masks, frame images) keyed on the trajectory's request id
(``pixelis_verl.tools.state``); this loop frees it when the trajectory ends, however it ends.
verl instantiates one loop per trajectory, so the id the loop made is remembered on the instance.

Registered through ``conf/agent_loops.yaml`` (``actor_rollout_ref.rollout.agent.agent_loop_config_path``),
which verl loads in each agent-loop worker only.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput
from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

from pixelis_verl.tools.state import release_trajectory
from pixelis_verl.tools.steps import STEPS_KEY


class PixelisToolAgentLoop(ToolAgentLoop):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._request_ids: list[str] = []

    def _make_request_id(self, priority: int, full_determinism: bool) -> str:
        request_id = ToolAgentLoop._make_request_id(priority, full_determinism)
        self._request_ids.append(request_id)
        return request_id

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        try:
            output = await super().run(sampling_params, **kwargs)
        finally:
            while self._request_ids:
                release_trajectory(self._request_ids.pop())
        output.extra_fields.setdefault(STEPS_KEY, [])
        return output
