"""DirecFormer (Truong et al., CVPR 2022): directed attention in a divided space-time transformer."""
