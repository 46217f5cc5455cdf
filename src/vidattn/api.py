"""The public API: the operations and modules of the five papers, importable from one place, and the
head-to-head chapter's trunk and registry.

    from vidattn.api import SIFABlock, CIDCHead, PyramidAttention

Each name is defined where its chapter derives it (``vidattn.papers.<paper>``) or, for
what several chapters share, in :mod:`vidattn.models` and :mod:`vidattn.engine`; this
module only gathers them. Every module takes and returns ``torch`` tensors laid out as
``(batch, channels, time, height, width)`` unless its docstring says otherwise, and
none downloads anything.
"""
from vidattn.engine.flops import count_macs, count_params
from vidattn.engine.train import TrainConfig, fit
from vidattn.models.baselines import FrameAverage, TinyC3D
from vidattn.models.temporal import CorrelationFeature, DifferenceFeature, TemporalAttention, TemporalConv, tsm_shift
from vidattn.papers.cidc.model import CIDCHead, CIDCUnit, DirectionalTemporalConv, directional_kernel
from vidattn.papers.direcformer.model import (
    Attention,
    DirecFormer,
    DirecFormerConfig,
    DividedBlock,
    cosine_scores,
    self_guided_loss,
)
from vidattn.papers.head_to_head.mechanisms import SlotNet, create_mechanism
from vidattn.papers.pyramid.attention import PyramidAttention, attention_loss, interaction_loss
from vidattn.papers.sifa.op import SIFABlock, inter_frame_attention, motion_saliency
from vidattn.papers.spatial.class_peaks import response_map
from vidattn.papers.spatial.model import ZoomNetwork
from vidattn.papers.spatial.sampler import SaliencySampler

__all__ = [
    # DirecFormer (directed attention)
    "cosine_scores", "Attention", "DividedBlock", "DirecFormerConfig", "DirecFormer", "self_guided_loss",
    # CIDC
    "directional_kernel", "DirectionalTemporalConv", "CIDCUnit", "CIDCHead",
    # SIFA
    "inter_frame_attention", "motion_saliency", "SIFABlock",
    # spatial and temporal sparse attention
    "SaliencySampler", "response_map", "ZoomNetwork",
    # interaction-aware pyramid attention
    "PyramidAttention", "interaction_loss", "attention_loss",
    # the temporal baselines every chapter compares against
    "TemporalConv", "tsm_shift", "CorrelationFeature", "DifferenceFeature", "TemporalAttention", "FrameAverage",
    "TinyC3D",
    # every mechanism in one trunk's temporal slot (the head-to-head chapter)
    "SlotNet", "create_mechanism",
    # training and counting
    "TrainConfig", "fit", "count_macs", "count_params",
]
