#!/usr/bin/env bash
# The prepared GPU check of issue 4, one run on an H100/H200 device machine (its image has torch,
# torchvision, scikit-image/-learn, scipy, pandas, fsspec and pillow; nothing else is needed):
#   bash benchmarks/gpu_run.sh            # results land in $OUT (or /tmp/gpu-out)
# Same JPEG folder for both runs; the second adds torch.compile to the fast path.
set -euo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)' | tee -a "$OUT/gpu.txt"
"$PY" benchmarks/gpu_train.py --images 20000 --epochs 5 --folder /tmp/freshness-jpegs 2>&1 | tee "$OUT/gpu_train.log"
"$PY" benchmarks/gpu_train.py --images 20000 --epochs 5 --folder /tmp/freshness-jpegs --compile 2>&1 \
  | tee "$OUT/gpu_train_compile.log"
