#!/usr/bin/env bash
# A small workspace to try the guides' commands in (the docs test runs it too): ~30 generated
# tiles in data/ with data/catalog.parquet, EDA statistics in eda/, 10 AOI-grouped folds in
# split/, band statistics of the demo channels in stats.json and, with --model, a one-epoch
# demo model in runs/fold0 (tracked in runs/fold0/mlflow.db). About a minute of CPU.
# Usage: bash scripts/docs_workspace.sh [--model]   (in an empty folder beside configs/)
set -euo pipefail
kelpseg synth --out data --n-aoi 12 --tiles-per-aoi 2 3 --seed 0
kelpseg catalog data
kelpseg eda stats data --out eda
kelpseg split eda/tile_stats.parquet --out split
kelpseg stats data/catalog.parquet --out stats.json --channels R,G,B,SWIR1,NIR,QA,DEM,DEMWM,NDVI
if [[ "${1:-}" == "--model" ]]; then
  kelpseg train --config configs/demo.yaml --set data.catalog=split/split.parquet \
    --set stats_path=stats.json --set data.store=null --set output_dir=runs/fold0 \
    --set trainer.max_epochs=1 --set data.sampler.samples_per_epoch=32
fi
