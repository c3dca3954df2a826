#!/usr/bin/env bash
# The one script to run on a lent GPU (an H100/H200): everything GPU-side, inside 8 minutes,
# each result written as JSON under $OUT (or ./gpu-check). Never run yet: no GPU has been lent.
#
#   bash benchmarks/gpu_check.sh            # CIFAR-10 staged in /tmp/data/cifar10 (benchmarks/README.md)
#
# Budget (seconds, wall): installs 60, GPU tests 100, throughput 2 x 60, LeNet-5 to 99% 60,
# ResNet-20 on CIFAR-10 what is left of 480. Each step has its own `timeout`, so one that
# hangs cannot eat the others' time, and each writes its JSON before the next starts.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check}"; mkdir -p "$out"
start=$(date +%s)
left() { echo $(( 480 - ($(date +%s) - start) )); }
note() { echo "[$(( $(date +%s) - start ))s] $*"; }
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
data="${TINYCNN_DATA:-/tmp/data}"

# The lent machine has CuPy 14, PyTorch and pytest, and no internet: install only what is missing
# (pip would otherwise spend the whole minute failing to reach PyPI).
if python -c "import cupy, torch, pytest, hypothesis" >"$out/install.log" 2>&1; then
    note "CuPy, PyTorch and pytest present: nothing to install"
else
    note "install (pinned as in .ci/run; [ctk] brings NVRTC and cuBLAS)"
    timeout 60 pip install --quiet 'cupy-cuda13x[ctk]==14.2.0' torch pytest hypothesis >>"$out/install.log" 2>&1 \
        || note "install incomplete: see install.log"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.csv" 2>&1

note "the GPU test suite (pytest -m gpu)"
timeout 100 python -m pytest -q -m gpu -x --junitxml="$out/gpu_tests.xml" >"$out/gpu_tests.log" 2>&1
echo "{\"gpu_tests_exit\": $?}" >"$out/gpu_tests.json"

note "throughput, exact float32, against PyTorch"
timeout 60 python benchmarks/throughput.py --device cuda --rounds 3 --json "$out/throughput_exact.json" \
    >"$out/throughput_exact.log" 2>&1
note "throughput, TF32 GEMMs, against PyTorch"
timeout 60 python benchmarks/throughput.py --device cuda --tf32 --rounds 3 --json "$out/throughput_tf32.json" \
    >"$out/throughput_tf32.log" 2>&1

note "LeNet-5 to 99% on MNIST (staged in $data/mnist: carry it, 12 MB, see benchmarks/README.md)"
timeout 60 python benchmarks/time_to_accuracy.py --device cuda --data-dir "$data" --targets lenet5-mnist \
    --json "$out/lenet5_mnist.json" >"$out/lenet5_mnist.log" 2>&1

budget=$(( $(left) - 15 ))
note "ResNet-20 on CIFAR-10 for ${budget}s (as many epochs as fit; metrics written every epoch)"
if [ "$budget" -gt 30 ] && [ -d "$data/cifar10" ]; then
    timeout "$budget" python -m tinycnn.cli train --dataset cifar10 --model resnet20 --device cuda \
        --data-dir "$data" --epochs 182 --out "$out/resnet20" --quiet >"$out/resnet20.log" 2>&1
    echo "{\"resnet20_exit\": $?, \"seconds\": $budget}" >"$out/resnet20.json"
    # stopped by the timeout, the run never wrote history.json: take the epochs from its checkpoint
    python -c "import json, sys; from tinycnn.runner import load_checkpoint; \
json.dump(load_checkpoint(sys.argv[1])['fit_state']['history'], open(sys.argv[2], 'w'), indent=1)" \
        "$out/resnet20" "$out/resnet20_history.json" >>"$out/resnet20.log" 2>&1
else
    echo "{\"resnet20_skipped\": \"budget ${budget}s or no $data/cifar10\"}" >"$out/resnet20.json"
fi
note "done in $(( $(date +%s) - start ))s; results in $out"
