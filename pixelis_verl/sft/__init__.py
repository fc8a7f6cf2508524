"""Phase 1: supervised fine-tuning on CoTA traces with verl's SFT trainer and a masked, token-weighted loss."""
