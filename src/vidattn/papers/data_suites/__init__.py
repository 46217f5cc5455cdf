"""The data chapter: the premise that order-blind models fail on the suites, and the localisation evaluator."""
