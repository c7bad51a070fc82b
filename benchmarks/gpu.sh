#!/usr/bin/env bash
# The whole benchmark suite on a lent GPU machine, in one `run` call of the device tool.
#
# 1. Here, once (needs pip's network): fetch the wheels the GPU image lacks into .whl/ (git-ignored
#    through .git/info/exclude; about 53 MB, under the 64 MiB the working tree may carry):
#        bash benchmarks/gpu.sh fetch
# 2. On the GPU (the device tool's `run`, carry [".whl"]), with the commit measured:
#        KELPSEG_GIT_COMMIT=$(git rev-parse HEAD) bash benchmarks/gpu.sh
#    i.e. run(command="KELPSEG_GIT_COMMIT=<sha> bash benchmarks/gpu.sh", carry=[".whl"]).
#    It installs the wheels into /tmp/site, checks the imports and CUDA, runs
#    `kelpseg bench --suite all --device cuda` and, if time is left, the demo config's train
#    suite; results and logs go to $OUT (the device tool fetches them back):
#        $OUT/gpu-results.json  $OUT/gpu-demo-train.json  $OUT/gpu-bench.log  $OUT/nvidia-smi.txt
#    Each results file is rewritten after every suite, so a run cut short keeps what it measured.
# Compare later runs with: .venv/bin/python benchmarks/compare.py OLD.json NEW.json
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.whl
LIST=benchmarks/gpu-wheels.txt

if [[ "${1:-}" == "fetch" ]]; then
  PY=${PYTHON:-.venv/bin/python}
  mkdir -p .git/info "$WHEELS"
  grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
             --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
             --platform manylinux1_x86_64)
  grep -v -e '^#' -e '^python-box' "$LIST" > "$WHEELS/requirements.txt"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d "$WHEELS" -r "$WHEELS/requirements.txt"
  # python-box's pure-Python wheel: a hundredth of the size of its compiled one.
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation py --platform any -d "$WHEELS" "$(grep '^python-box' "$LIST")"
  rm "$WHEELS/requirements.txt"
  du -sh "$WHEELS"
  exit 0
fi

OUT=${OUT:-$PWD/bench-gpu-out}
mkdir -p "$OUT"
LOG="$OUT/gpu-bench.log"
export PYTHONUNBUFFERED=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
if compgen -G "$WHEELS/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}
python3 - <<'PY' 2>&1 | tee "$LOG"
import torch
assert torch.cuda.is_available(), "no CUDA device visible"
import kelpseg.bench.data, kelpseg.bench.features, kelpseg.bench.group  # noqa: E401
import kelpseg.bench.infer, kelpseg.bench.train, kelpseg.cli.bench  # noqa: E401
print(f"imports ok; torch {torch.__version__}, {torch.cuda.get_device_name()}")
PY
# Stay inside the device tool's 10-minute limit per command, whatever a suite does.
timeout 420 python3 -m kelpseg.cli.app bench --suite all --device cuda --repeats 3 \
  --workdir /tmp/kelpseg-bench --out "$OUT/gpu-results.json" 2>&1 | tee -a "$LOG" \
  || echo "the full suite stopped early (see the log); its results file holds the suites done" \
  | tee -a "$LOG"
timeout 75 python3 -m kelpseg.cli.app bench --suite train --device cuda --repeats 3 \
  --config configs/demo.yaml --workdir /tmp/kelpseg-bench --out "$OUT/gpu-demo-train.json" \
  2>&1 | tee -a "$LOG" || echo "demo-config train suite did not finish" | tee -a "$LOG"
