"""vidattn: the shared package of the video-attention companion book."""

__version__ = "0.1.0"
