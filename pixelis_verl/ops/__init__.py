"""Pure pixel operations on numpy/PIL: no verl or Ray import, so they are unit-tested and benchmarked directly."""
