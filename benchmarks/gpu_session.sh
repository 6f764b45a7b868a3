#!/usr/bin/env bash
# One device session's GPU checks, run on the lent machine from the repository root:
#   bash benchmarks/gpu_session.sh            (writes logs under $OUT, or ./gpu_logs without it)
# Each part has its own time limit so that a slow one cannot take the others' output with it.
set -u -o pipefail
out="${OUT:-gpu_logs}"
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$python" -c "import torch, timm, transformers; print('torch', torch.__version__, 'timm', timm.__version__, 'transformers', transformers.__version__)"
} 2>&1 | tee "$out/env.txt"
timeout 120 "$python" benchmarks/gpu_checks.py 2>&1 | tee "$out/gpu_checks.txt"
timeout 200 "$python" benchmarks/gpu_vit.py --iters 15 2>&1 | tee "$out/gpu_vit.txt"
timeout 220 "$python" benchmarks/gpu_llama.py --steps 15 --warmup 3 --skip-eager-reference 2>&1 | tee "$out/gpu_llama.txt"
