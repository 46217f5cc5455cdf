"""Interaction-aware spatio-temporal pyramid attention (Hu, Liu, Du et al.)."""
