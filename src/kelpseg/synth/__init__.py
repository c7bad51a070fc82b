"""Demo data in the Kelp Wanted layout: coastlines, DEMs, kelp beds, clouds and label noise."""

from kelpseg.synth.config import SynthConfig
from kelpseg.synth.generator import SynthResult, dataset_stats, generate_dataset

__all__ = ["SynthConfig", "SynthResult", "dataset_stats", "generate_dataset"]
