"""Registered experiments, one module per chapter (importing this registers them all)."""
from vidattn.experiments import cidc, data_suites, direcformer  # noqa: F401
