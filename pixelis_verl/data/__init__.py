"""Datasets: synthetic verifiable pixel tasks and their conversion to verl's RL parquet rows."""
