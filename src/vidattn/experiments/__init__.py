"""Registered experiments, one module per chapter (importing this registers them all)."""
from vidattn.experiments import data_suites, direcformer  # noqa: F401
