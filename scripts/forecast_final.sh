#!/usr/bin/env bash
# Issue 23's recorded runs: each preset with seeds 0-4, one training per take of the shared heavy lock
# (1 thread), then one JSON line per run appended to docs/forecast_runs.jsonl (the format of
# scripts/forecast_table.py: preset, seed, set, metrics.json) and the interval/CRPS summary.
#   bash scripts/forecast_final.sh forecast/airline forecast/sunspots forecast/co2
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
LOCK=${LOCK:-/tmp/lstmkit-heavy.lock}
RUNS=${RUNS:-runs/final}
for P in "$@"; do
  for S in 0 1 2 3 4; do
    OUT="$RUNS/${P//\//-}-s$S"
    flock "$LOCK" env OMP_NUM_THREADS=1 "$PY" -m lstmkit -q train "$P" --set train.seed=$S --out "$OUT" --overwrite
    "$PY" - "$P" "$S" "$OUT" >> docs/forecast_runs.jsonl <<'PYEOF'
import json, sys
preset, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = json.load(open(f"{out}/metrics.json"))
print(json.dumps({"preset": preset, "seed": seed, "set": [], **m}))
PYEOF
  done
  "$PY" scripts/forecast_intervals.py "$RUNS/${P//\//-}"-s{0,1,2,3,4}
done
