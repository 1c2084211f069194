#!/usr/bin/env bash
# Every GPU figure the open issues ask for, in one run that fits a short loan of a GPU machine (about
# 8 minutes on one H100/H200). Each benchmark gets its own time limit, so one that overruns costs only
# its own rows; its output goes to the terminal and to $OUT/<name>.txt (or ./gpu-check/ without $OUT).
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine, after the wheel prefix of
#                                           # ../shared/tools/gpu-wheels.sh (PyAV, mediapipe, espeak loader)
#   bash benchmarks/gpu_check.sh --quick    # a dry run of the same commands on the CPU, tiny sizes
#
# What it measures (issue numbers in docs/measurements.md):
#   neural_speed.py       passthrough / wav2lip / wav2lip+gfpgan, 10 s and 60 s 720p clips    (issue 12)
#   videoretalking_speed  the VideoReTalking engine per stage and the reference networks      (issue 13)
#   sadtalker_speed       256 crop / full / full+gfpgan / 512 crop, 60 s of speech            (issue 14)
set -uo pipefail
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
out=${OUT:-gpu-check}
mkdir -p "$out"
py=${PYTHON:-python3}

run() {  # run NAME SECONDS COMMAND...: one benchmark under a time limit, output kept
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s): $*" | tee "$out/$name.txt"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$out/$name.txt"
  echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$out/$name.txt"
}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  nproc
  "$py" - <<'EOF'
import importlib
for name in ("torch", "cv2", "numpy", "scipy", "skimage", "av", "mediapipe", "tqdm", "matplotlib", "retalk"):
    try:
        module = importlib.import_module(name)
        print(f"{name:12s} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # a missing package is reported, not fatal: the benchmarks say what failed
        print(f"{name:12s} MISSING ({exc})")
import torch
print("cuda", torch.cuda.is_available(), torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF
} 2>&1 | tee "$out/machine.txt"

if (( quick )); then
  run neural_speed 300 "$py" benchmarks/neural_speed.py --device cpu --seconds 0.5 --skip-long --size 320x240
  run videoretalking_speed 300 "$py" benchmarks/videoretalking_speed.py --device cpu --frames 1 --size 128 \
    --checkpoints "$out/vrt-release"
  run sadtalker_speed 300 "$py" benchmarks/sadtalker_speed.py --device cpu --seconds 0.08 --ref-frames 2
else
  run neural_speed 200 "$py" benchmarks/neural_speed.py --device cuda --seconds 10 --long 60 --profile
  run videoretalking_speed 150 "$py" benchmarks/videoretalking_speed.py --device cuda --frames 250 --size 720 \
    --checkpoints "$out/vrt-release" --repeats 5
  run sadtalker_speed 150 "$py" benchmarks/sadtalker_speed.py --device cuda --seconds 60 --profile
fi
rm -rf "$out/vrt-release"
echo "figures in $out/"
