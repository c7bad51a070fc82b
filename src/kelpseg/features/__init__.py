"""Spectral indices, masking, channel building, band statistics and normalisation.

Serves both the networks and the tree models: it imports ``io`` and nothing of ``nn``.
"""

from kelpseg.features.bands import BASE_BANDS, BandSet, decode_raw
from kelpseg.features.channels import ChannelStack, InputBuilder
from kelpseg.features.compute_stats import compute_band_stats, tile_paths
from kelpseg.features.config import SEED_CHANNELS, FeatureConfig
from kelpseg.features.entry import IndexEntry
from kelpseg.features.indices import INDICES, available_channels
from kelpseg.features.normalize import NORMALIZERS, Normalizer
from kelpseg.features.render import render_channel
from kelpseg.features.stats import BandStats

__all__ = [
    "BASE_BANDS",
    "INDICES",
    "NORMALIZERS",
    "SEED_CHANNELS",
    "BandSet",
    "BandStats",
    "ChannelStack",
    "FeatureConfig",
    "IndexEntry",
    "InputBuilder",
    "Normalizer",
    "available_channels",
    "compute_band_stats",
    "decode_raw",
    "render_channel",
    "tile_paths",
]
