"""Video data: procedural suites (the default) and loaders for the papers' real datasets."""
