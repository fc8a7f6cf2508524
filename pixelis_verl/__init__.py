"""pixelis_verl: pixel-space tools, rewards and test-time RL for vision-language agents, built on verl."""

__version__ = "0.1.0"
