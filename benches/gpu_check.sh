#!/usr/bin/env bash
# One command for a session that has a GPU: check and benchmark snnrs's CUDA backend there.
#
# The device machine (`run` tool) has Python 3.12, torch 2.11 (CUDA 13, with NVRTC in
# nvidia/cu13/lib), torchvision, pyyaml, tqdm, triton, cupy, pytest and hypothesis, but no Rust
# and no network. So build and fetch the wheels HERE, into the git-ignored folder .whl/, and
# carry it along:
#
#   make wheel && rm -rf .whl && mkdir .whl && cp dist/snnrs-*.whl .whl/   # abi3, manylinux2014
#   pip download --no-deps -d .whl spikingjelly==2.0.0 loguru
#
# then call the `run` tool with  command: "bash benches/gpu_check.sh"  and  carry: [".whl"]
# (timeout_s 600). Steps: install the carried wheels (--no-deps --no-index), `python -m
# snnrs.cuda` (compile + every kernel against the CPU float64 kernels), `pytest
# tests/test_cuda.py tests/test_ops.py tests/test_contract.py` (the CUDA tests, the oracle tests
# on the cuda backend, the op boundary with CUDA tensors), benches/bench_cuda.py (the neuron
# op), then one training step of two recipes at their batch, snnrs against SpikingJelly with
# the same network (benches/bench_training.py --recipe: samd-nld-cifar10 at 128, joint-asnn-cifar10
# at 1024), and the memory levels against SpikingJelly at a recipe's batch (benches/bench_memory.py
# --batch 128). The benches write benches/RESULTS.md; that file and every log are copied to $OUT, so
# they come back with the reply. A summary table is printed last. Run one step alone with an
# argument: selftest, tests, bench, recipe or memory (default: all). Each step stops after STEP_TIMEOUT
# seconds (default 240).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/snnrs-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
what=${1:-all}

shopt -s nullglob
ours=(.whl/snnrs-*.whl)
if [ ${#ours[@]} -ne 1 ]; then
    echo "gpu_check: need exactly one .whl/snnrs-*.whl, found ${#ours[@]}; build it as the" \
        "header of $0 says and carry .whl" >&2
    exit 2
fi
wheels=("${ours[@]}" .whl/spikingjelly-*.whl .whl/loguru-*.whl)
echo "== install ${wheels[*]}"
"$PY" -m pip install --quiet --no-deps --no-index --force-reinstall "${wheels[@]}" || exit 2
nvidia-smi -L || true
"$PY" -c "import torch, snnrs; print('torch', torch.__version__, 'snnrs', snnrs.__version__, \
'from', snnrs.__file__, '| GPUs:', torch.cuda.device_count())" || exit 2

declare -A result
# A step that hangs (a kernel that never returns) must not take the session's device time
# with it: each step is stopped after STEP_TIMEOUT seconds (exit 124).
step_timeout=${STEP_TIMEOUT:-240}
step() {  # step NAME COMMAND...: runs it, logs to $OUT/NAME.log, records PASS/FAIL
    local name=$1
    shift
    echo "== $name: $*"
    local t0=$SECONDS
    timeout "$step_timeout" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    result[$name]="$([ "$rc" = 0 ] && echo PASS || echo "FAIL (exit $rc)") in $((SECONDS - t0)) s"
}

case $what in all|selftest) step selftest "$PY" -m snnrs.cuda ;; esac
case $what in all|tests) step tests "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_ops.py \
    tests/test_contract.py ;; esac
case $what in all|bench) step bench "$PY" benches/bench_cuda.py ;; esac
case $what in all|recipe)
    step recipe-samd "$PY" benches/bench_training.py --recipe samd-nld-cifar10 --repeats 5
    step recipe-joint "$PY" benches/bench_training.py --recipe joint-asnn-cifar10 --repeats 3 ;;
esac
case $what in all|memory) step memory "$PY" benches/bench_memory.py --device cuda --batch 128 \
    --repeats 3 --alone-rounds 1 --growth-T 2 8 ;; esac
cp benches/RESULTS.md "$OUT/RESULTS.md" 2>/dev/null

echo
echo "== summary (logs and RESULTS.md in $OUT)"
printf '| %-12s | %-28s |\n' step result
printf '|--------------|------------------------------|\n'
status=0
for name in selftest tests bench recipe-samd recipe-joint memory; do
    [ -n "${result[$name]:-}" ] || continue
    printf '| %-12s | %-28s |\n' "$name" "${result[$name]}"
    [[ ${result[$name]} == PASS* ]] || status=1
done
grep -E '^(max error|all kernels|FAIL)' "$OUT/selftest.log" 2>/dev/null
tail -n 1 "$OUT/tests.log" 2>/dev/null
cat "$OUT"/bench.log "$OUT"/recipe-*.log "$OUT"/memory.log 2>/dev/null | grep -E '^\|'
exit $status
