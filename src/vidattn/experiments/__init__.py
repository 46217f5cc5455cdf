"""Registered experiments, one module per chapter (importing this registers them all)."""
from vidattn.experiments import data_suites  # noqa: F401
