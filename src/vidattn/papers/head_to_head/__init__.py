"""The head-to-head chapter: the five mechanisms of the book and four baselines on one trunk."""
