#!/usr/bin/env bash
# The GPU check of issue 24, in one go: about 8 minutes at most on one H200 (each step has its own
# time limit). Runs from the source tree, nothing installed:
#
#     OUT=/some/dir bash benchmarks/cuda_check.sh        # $OUT unset: a fresh temporary directory
#
#   1. the cuda tests:               pytest -m cuda tests/cuda            -> $OUT/cuda-tests.txt
#   2. lstmkit bench speed on CUDA at (T,B,D,H) = (100,32,8,128), (512,64,64,256), (1000,256,128,512)
#                                                                          -> $OUT/speed/speed.{json,csv,md}
#   3. bf16-mixed vs float32 training of the digits preset, same seed       -> $OUT/precision.json
#   4. the targets read from 2: fast path / cuDNN, lengths path / cuDNN PackedSequence (lengths 20..100),
#      each variant / cuDNN (training)                                     -> $OUT/targets.json
#
# Without CUDA (the CPU rehearsal) it still runs to the end: the cuda tests skip, each GPU step
# prints "SKIPPED (no CUDA)" with the command it would run, and step 3 runs a 2-epoch CPU smoke
# test of its plumbing (numbers meaningless). The exit status is non-zero if a step that ran failed.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d -t lstmkit-cuda-check.XXXXXX)}
mkdir -p "$OUT"
SHAPES="100,32,8,128;512,64,64,256;1000,256,128,512"
declare -a SUMMARY=()
FAILED=0

step() { echo; echo "=== $* ==="; }
record() {  # record NAME STATUS
    SUMMARY+=("$1: $2")
    case "$2" in ok|skipped*) ;; *) FAILED=1 ;; esac
}
run_limited() {  # run_limited SECONDS CMD...: the status, 124 if it ran out of time
    local limit=$1; shift
    timeout --signal=INT --kill-after=15 "$limit" "$@"
}

START=$(date +%s)
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then CUDA=1; else CUDA=0; fi

step "environment"
echo "output directory: $OUT"
$PY - <<'EOF'
import platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA build {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}")
print(f"CUDA available: {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))" if torch.cuda.is_available() else ""))
for name in ("triton", "onnxruntime", "aeon", "optuna", "mnist1d", "statsmodels", "sklearn", "skimage"):
    try:
        m = __import__(name)
        print(f"  {name} {getattr(m, '__version__', '?')}")
    except Exception as e:  # noqa: BLE001 - a report of what is there
        print(f"  {name}: not importable ({type(e).__name__})")
EOF
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
else
    echo "nvidia-smi: not found"
fi
[ "$CUDA" = 1 ] || echo ">>> NO CUDA DEVICE: this is a rehearsal; every GPU step below is SKIPPED"

step "1/4 cuda tests: pytest -m cuda tests/cuda"
run_limited 150 $PY -m pytest -q -p no:cacheprovider -m cuda tests/cuda -rs 2>&1 | tee "$OUT/cuda-tests.txt"
rc=${PIPESTATUS[0]}
if [ "$rc" = 0 ]; then
    if [ "$CUDA" = 1 ]; then record "cuda tests" ok; else record "cuda tests" "skipped (no CUDA: every test skipped cleanly)"; fi
else
    record "cuda tests" "FAILED (exit $rc)"
fi

step "2/4 lstmkit bench speed --device cuda over $SHAPES"
SPEED_CMD=($PY -m lstmkit bench speed --device cuda --malloc current --shapes "$SHAPES" --warmup 3 --repeats 7
           --out "$OUT/speed")
if [ "$CUDA" = 1 ]; then
    echo "\$ ${SPEED_CMD[*]}"
    run_limited 200 "${SPEED_CMD[@]}" 2>&1 | tail -n 120
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 0 ]; then record "bench speed" ok; else record "bench speed" "FAILED (exit $rc)"; fi
else
    echo "SKIPPED (no CUDA): ${SPEED_CMD[*]}"
    record "bench speed" "skipped (no CUDA)"
fi

step "3/4 bf16-mixed vs float32: digits preset, same seed"
if [ "$CUDA" = 1 ]; then
    run_limited 130 $PY benchmarks/cuda_precision.py --device cuda --seed 0 --out "$OUT/precision.json"
    rc=$?
    if [ "$rc" = 0 ]; then record "precision" ok; else record "precision" "FAILED (exit $rc)"; fi
else
    echo "SKIPPED (no CUDA): $PY benchmarks/cuda_precision.py --device cuda --seed 0 --out $OUT/precision.json"
    echo "CPU smoke test of the same plumbing (2 epochs, bf16 autocast on the CPU; numbers meaningless):"
    run_limited 100 $PY benchmarks/cuda_precision.py --device cpu --seed 0 --epochs 2 \
        --out "$OUT/precision-cpu-smoke.json"
    rc=$?
    if [ "$rc" = 0 ]; then record "precision" "skipped (no CUDA; CPU smoke test ok)"; else record "precision" "FAILED (CPU smoke, exit $rc)"; fi
fi

step "4/4 targets from the speed rows"
if [ -f "$OUT/speed/speed.json" ]; then
    $PY - "$OUT/speed/speed.json" "$OUT/targets.json" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
def ratio(row, shape, mode):
    for r in rows:
        if r["row"] == row and (r["T"], r["B"], r["D"], r["H"]) == shape and r["mode"] == mode:
            return r["ratio_vs_nn_lstm"], r["ms"], r.get("peak_mib")
    return None
def packed_ratio(shape, mode):
    ours, ref = ratio("lstmkit lengths", shape, mode), ratio("nn.LSTM packed (lengths)", shape, mode)
    return None if not ours or not ref else round(ours[1] / ref[1], 3)
shapes = sorted({(r["T"], r["B"], r["D"], r["H"]) for r in rows})
targets = []
for shape in shapes:
    for mode in ("train", "infer"):
        fast = ratio("lstmkit fast path", shape, mode)
        targets.append({"target": "fast path <= 1.05x nn.LSTM", "shape": shape, "mode": mode,
                        "value": fast and fast[0], "met": bool(fast and fast[0] <= 1.05)})
    if shape == (100, 32, 8, 128):
        for mode in ("train", "infer"):
            v = packed_ratio(shape, mode)
            targets.append({"target": "lengths= path <= 1.0x nn.LSTM PackedSequence (lengths 20..100)", "shape": shape,
                            "mode": mode, "value": v, "met": v is not None and v <= 1.0})
    for r in rows:
        if r["row"].startswith("variant ") and (r["T"], r["B"], r["D"], r["H"]) == shape and r["mode"] == "train":
            goal = shape != (100, 32, 8, 128) and "eager" not in r["row"]  # the eager row shows what graphs save
            targets.append({"target": f"{r['row']} <= 3x nn.LSTM (training)" + ("" if goal else " (stated only)"),
                            "shape": shape, "mode": "train", "value": r["ratio_vs_nn_lstm"],
                            "met": (r["ratio_vs_nn_lstm"] <= 3.0) if goal else None})
json.dump(targets, open(sys.argv[2], "w"), indent=1)
for t in targets:
    mark = {True: "MET ", False: "MISS", None: "    "}[t["met"]]
    print(f"{mark} {t['target']:<62} T,B,D,H={t['shape']} {t['mode']:<5} {t['value']}")
EOF
    rc=$?
    if [ "$rc" = 0 ]; then record "targets" ok; else record "targets" "FAILED (exit $rc)"; fi
else
    echo "SKIPPED (no speed rows: step 2 did not run): fast path, lengths vs PackedSequence and variant ratios"
    record "targets" "skipped (no speed rows)"
fi

step "summary ($(( $(date +%s) - START )) s; outputs in $OUT)"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
[ "$CUDA" = 1 ] || echo "  >>> rehearsal without CUDA: the GPU measurements are still to be made"
exit $FAILED
