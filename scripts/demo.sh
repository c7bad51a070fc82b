#!/usr/bin/env bash
# The main job on generated demo data: generate -> validate -> catalog.
# Later stages extend this same chain (see README "What make demo does").
set -euo pipefail
OUT=${1:-demo-output}
N_AOI=${2:-40}
KS=${KELPSEG:-.venv/bin/kelpseg}
DATA="$OUT/data"

echo "== 1. generate demo data ($N_AOI areas) into $DATA"
$KS synth --out "$DATA" --n-aoi "$N_AOI" --seed 0 --preview --overwrite
echo "== 2. validate every file"
$KS validate "$DATA"
echo "== 3. catalog and summary"
$KS catalog "$DATA" --out "$OUT/catalog.parquet"
echo "demo done: data in $DATA, preview at $DATA/preview.png"
