#!/usr/bin/env bash
# The light install, checked in its own virtual env (make light-check; CI runs it after make test):
# the full env exports a tiny random-init model as a package, and the light env (core only, no
# torch) predicts the test tiles with it, writes the submission and checks it.
# Usage: scripts/light_check.sh [LIGHT_VENV] [OUT_DIR]   (FULL_VENV=.venv by default)
set -euo pipefail
LIGHT=${1:-.venv-light}
OUT=${2:-light-check-output}
FULL=${FULL_VENV:-.venv}
start=$(date +%s)
step() { printf '\n== light-check: %s  (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }
fail() { echo "light-check FAILED: $1" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"

step "1. the light env has no training stack"
for module in torch lightning segmentation_models_pytorch mlflow dask; do
  if "$LIGHT/bin/python" -c "import $module" 2>/dev/null; then fail "$module imports in $LIGHT"; fi
done
"$LIGHT/bin/kelpseg" --help >/dev/null

step "2. full env: tiny dataset, a random-init model, exported as a package"
"$FULL/bin/kelpseg" synth --out "$OUT/data" --n-aoi 2 --size 64 --tiles-per-aoi 3 4 --seed 3 \
  --test-fraction 0.4 --workers 1 --overwrite >/dev/null
"$FULL/bin/python" - "$OUT/data" "$OUT/model.ckpt" <<'EOF'
# A checkpoint as training writes it (weights, config, band statistics) without training.
import sys
from pathlib import Path

import torch

from kelpseg.config import validate_config
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import FeatureConfig
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.module import KelpSegModule

data, out = Path(sys.argv[1]), Path(sys.argv[2])
features = {"channels": ["R", "G", "B", "SWIR1", "NIR", "QA", "DEM", "NDVI"]}
tiles = sorted((data / "train_satellite").glob("*_satellite.tif"))
stats = compute_band_stats(tiles, FeatureConfig(**features), device="cpu", show_progress=False)
small = {"encoder_depth": 3, "decoder_channels": [32, 16, 8]}  # export time: seconds
model = {"encoder": "tu-resnet10t", "encoder_weights": None, "arch": "Unet", "arch_kwargs": small}
torch.manual_seed(0)
config = validate_config(TrainConfig, {"features": features, "model": model})
module = KelpSegModule(config, stats, pretrained=False).eval()
ckpt = {"state_dict": module.state_dict()}
module.on_save_checkpoint(ckpt)
torch.save(ckpt, out)
EOF
"$FULL/bin/kelpseg" export --model "$OUT/model.ckpt" --name light-check --version 0.1 \
  --out "$OUT/package" --threshold 0.5 >/dev/null

step "3. light env: predict the test tiles with the package, submit, check"
export KELPSEG_MODELS_DIR="$OUT/registry"
"$LIGHT/bin/kelpseg" models add "$OUT/package" --quiet
"$LIGHT/bin/kelpseg" predict --model light-check@0.1 --tiles "$OUT/data" --split test \
  --out "$OUT/predictions" --threads 2 --quiet
"$LIGHT/bin/kelpseg" submit "$OUT/predictions" --catalog "$OUT/data" --out "$OUT/submission.tar" \
  --size 64
"$LIGHT/bin/kelpseg" submit --check "$OUT/submission.tar" --catalog "$OUT/data" --size 64

step "4. light env: a training command names the extra to install"
set +e
"$LIGHT/bin/kelpseg" train --config configs/demo.yaml 2>"$OUT/train.err" >/dev/null
code=$?
set -e
[ "$code" -eq 2 ] || fail "kelpseg train exited $code in the light env (expected 2)"
grep -q "pip install 'kelpseg\[train\]'" "$OUT/train.err" || fail "no extra named: $(cat "$OUT/train.err")"
cat "$OUT/train.err"
step "light install ok"
