"""``pixelis_tool_agent``: verl's ``ToolAgentLoop`` with pixelis' per-trajectory step records.

Our tools append a step record per call to ``extra_fields["pixelis_steps"]``. A trajectory that
never calls a tool would lack the key, and verl joins the outputs of its agent-loop workers with
``DataProto.concat``, which fails when one worker's batch has a key another's lacks. Every
trajectory therefore leaves this loop with the key, an empty list when no tool was called.

Registered through ``conf/agent_loops.yaml`` (``actor_rollout_ref.rollout.agent.agent_loop_config_path``),
which verl loads in each agent-loop worker only.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput
from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

from pixelis_verl.tools.steps import STEPS_KEY


class PixelisToolAgentLoop(ToolAgentLoop):
    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        output = await super().run(sampling_params, **kwargs)
        output.extra_fields.setdefault(STEPS_KEY, [])
        return output
