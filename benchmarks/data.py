"""Data-path benchmark: prepared-store reads and GeoTIFF decoding vs a raw memcpy floor.

Thin wrapper of the ``data`` suite (:mod:`kelpseg.bench.data`, the one implementation), the
same as ``kelpseg bench --suite data`` with the dataset size and batch settable::

    .venv/bin/python benchmarks/data.py [--n-aoi 12] [--batch 32] [--workdir DIR] [--quick]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from kelpseg.bench import BenchConfig, print_suite, run_bench
from kelpseg.bench.data import DataSettings


def main() -> None:
    """Parse flags, run the suite, print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-aoi", type=int, default=None, help="AOIs of the generated dataset")
    parser.add_argument("--batch", type=int, default=None, help="tiles per batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="reuse/keep data here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    parser.add_argument("--out", type=Path, default=None, help="results JSON")
    args = parser.parse_args()
    config = BenchConfig(
        suites=["data"], quick=args.quick, repeats=args.repeats, workdir=args.workdir
    )
    settings = DataSettings.for_run(config)
    settings = replace(
        settings, n_aoi=args.n_aoi or settings.n_aoi, batch=args.batch or settings.batch
    )
    run_bench(config, args.out, on_suite=print_suite, settings={"data": settings})


if __name__ == "__main__":
    main()
