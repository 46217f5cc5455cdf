"""CIDC (Li, Shuai, Tighe, ECCV 2020): directional temporal modelling over the sub-clips of a video."""
