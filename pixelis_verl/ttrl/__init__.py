"""Phase 3: Pixel TTRL, online label-free learning on a request stream (docs/ttrl.md)."""
