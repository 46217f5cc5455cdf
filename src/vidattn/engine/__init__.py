"""Training and evaluation engine shared by every chapter."""
