"""kelpseg: kelp-canopy segmentation in Landsat imagery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kelpseg")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
