"""SIFA (Long et al., CVPR 2022): stand-alone inter-frame attention with deformable keys."""
