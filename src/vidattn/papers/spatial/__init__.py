"""Spatial and temporal sparse attention (Zhou, Li, Wang, Li, 2022): zooming on class peaks with a saliency sampler."""
