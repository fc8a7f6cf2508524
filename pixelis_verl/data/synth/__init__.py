"""Synthetic, verifiable pixel tasks whose answers can be checked exactly."""
