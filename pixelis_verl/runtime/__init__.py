"""The small runtime that lets verl's own trainer, agent loop and reward loop run on a CPU machine.

verl is imported before any submodule here: that loads our plugin (``pixelis_verl.plugin``) while
no runtime module is half-imported, whichever module a process happens to import first (a Ray
actor unpickling ``hf_rollout.HFRolloutServer``, a test importing ``platform``).
"""

import verl  # noqa: F401
