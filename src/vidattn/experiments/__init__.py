"""Registered experiments, one module per chapter and its real-data runs (importing this registers them all)."""
from vidattn.experiments import (  # noqa: F401
    cidc, cidc_real, data_suites, direcformer, direcformer_real, sifa, sifa_real, spatial_attention,
    spatial_attention_real, pyramid_attention, pyramid_attention_real)
