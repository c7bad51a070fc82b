#!/usr/bin/env bash
# The main job on generated demo data, end to end:
# synth -> validate -> catalog -> EDA -> band stats -> AOI groups + folds -> prepare -> train
# -> predict test -> submit -> score against the generated test labels.
# Usage: scripts/demo.sh [OUT_DIR] [N_AOI]   (make demo runs it)
set -euo pipefail
OUT=${1:-demo-output}
N_AOI=${2:-40}
KS=${KELPSEG:-.venv/bin/kelpseg}
DATA="$OUT/data"
CHANNELS="R,G,B,SWIR1,NIR,QA,DEM,DEMWM,NDVI"   # the demo config's input channels
start=$(date +%s)
step() { printf '\n== %s  (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "1. generate demo data ($N_AOI areas) into $DATA"
$KS synth --out "$DATA" --n-aoi "$N_AOI" --seed 0 --preview --overwrite
step "2. validate every file"
$KS validate "$DATA"
step "3. catalog"
$KS catalog "$DATA" --out "$OUT/catalog.parquet"
step "4. EDA: per-tile statistics on Dask, plots, HTML report"
$KS eda stats "$DATA" --out "$OUT/eda" --workers 2 --quiet
$KS eda report "$OUT/eda"
step "5. band statistics of the demo channels"
$KS stats "$OUT/catalog.parquet" --channels "$CHANNELS" --out "$OUT/stats.json" --threads 1 --no-progress
step "6. AOI grouping and stratified group k-fold split"
$KS split "$OUT/eda/tile_stats.parquet" --out "$OUT/split" --quiet
step "7. pack tiles into the memory-mapped store"
$KS prepare "$OUT/split/split.parquet" --out "$OUT/store"
step "8. train the demo config (CPU, 128 px kelp-centred crops, validation on fold 0)"
rm -rf "$OUT/train"
$KS train --config configs/demo.yaml \
  --set data.catalog="$OUT/split/split.parquet" --set data.store="$OUT/store" \
  --set stats_path="$OUT/stats.json" --set output_dir="$OUT/train"
step "9. predict the test tiles (probabilities too)"
$KS predict --model "$OUT/train" --tiles "$OUT/catalog.parquet" --split test \
  --out "$OUT/predictions" --soft --overwrite --quiet
step "10. submission tar, checked"
$KS submit "$OUT/predictions" --catalog "$OUT/catalog.parquet" --out "$OUT/submission.tar"
$KS submit --check "$OUT/submission.tar" --catalog "$OUT/catalog.parquet"
step "11. score against the generated test labels"
$KS evaluate "$OUT/predictions" --labels "$DATA/test_labels" --images "$DATA/test_satellite" \
  --out "$OUT/evaluation" --quiet
step "done"
echo "EDA report:        $OUT/eda/report.html"
echo "evaluation report: $OUT/evaluation/report.html"
echo "submission:        $OUT/submission.tar"
echo "MLflow runs:       .venv/bin/mlflow ui --backend-store-uri sqlite:///$OUT/train/mlflow.db"
