"""Reward components: each scores one aspect of a trajectory."""
