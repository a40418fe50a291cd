#!/usr/bin/env bash
# Every bench script on one CUDA GPU, in one go, sized for an H100 (a few minutes in all).
#
# Usage: bash bench/gpu.sh
#   OUT           folder for the results (default bench-out): log.txt (the whole output), results.jsonl (one line
#                 per script: name, exit code, seconds, arguments, its last JSON line) and env.txt (the header)
#   BENCH_DEVICE  device to run on (default cuda); BENCH_QUICK=1: tiny sizes, to check the script on a CPU
#   BENCH_BUDGET  seconds for all the scripts together (default 300): each one is stopped at its own limit or when
#                 the budget runs out, and the ones left are recorded as skipped
#   BENCH_ONLY    comma-separated script names to run (default: all)
#   PYTHON        interpreter (default python3); ROBUST_CACHE (default /tmp/robust-cache) holds digits-m, built on
#                 first use, offline
# A failed script is recorded and the next one runs; the exit status is 1 if any failed.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out}
DEVICE=${BENCH_DEVICE:-cuda}
QUICK=${BENCH_QUICK:-0}
BUDGET=${BENCH_BUDGET:-300}
PY=${PYTHON:-python3}
export ROBUST_CACHE=${ROBUST_CACHE:-/tmp/robust-cache}
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 MPLBACKEND=Agg HF_HUB_OFFLINE=1
mkdir -p "$OUT"
LOG=$OUT/log.txt RESULTS=$OUT/results.jsonl
: >"$LOG"
: >"$RESULTS"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

{
    echo "# bench/gpu.sh $(date -u +%FT%TZ) device=$DEVICE quick=$QUICK budget=${BUDGET}s"
    if command -v nvidia-smi >/dev/null; then nvidia-smi -L; else echo "nvidia-smi: not found"; fi
    "$PY" - <<'EOF'
import importlib, importlib.metadata as md, platform, warnings
import torch
warnings.filterwarnings("ignore")
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
dists = md.packages_distributions()
for mod in ("timm", "torchvision", "kornia", "kornia_rs", "pytorch_grad_cam", "ttach", "cv2", "torchattacks",
            "mlxtend", "platformdirs", "skimage", "sklearn", "numpy", "safetensors", "huggingface_hub", "robust"):
    try:
        m = importlib.import_module(mod)
    except Exception as e:
        print(f"  {mod} NOT IMPORTABLE: {type(e).__name__}: {e}")
        continue
    try:
        version = md.version(dists.get(mod, [mod])[0])
    except Exception:
        version = getattr(m, "__version__", "?")
    print(f"  {mod} {version} {m.__file__}")
EOF
} 2>&1 | tee "$OUT/env.txt" >>"$LOG"
cat "$OUT/env.txt"

# name, its own limit in seconds, then its arguments: full sizes, or tiny ones with BENCH_QUICK=1
if [ "$QUICK" = 1 ]; then
    PLAN=(
        "attack_speed 120 --batch 8 --repeats 1"
        "cam 120 --batch 8 --batch-224 2 --repeats 1"
        "occlusion 120 --samples 10 --batch 10"
        "backbone 120 --batch 16 --repeats 2"
        "placement 120 --repeats 1"
        "augment 120 --repeats 1"
        "runner 180 --samples 20 --models resnet"
        "patch_attacks 180 --samples 20 --models resnet,vit --refine 0,1"
    )
else
    PLAN=(
        "attack_speed 60 --batch 512 --repeats 5"
        "cam 60 --batch 512 --batch-224 64 --repeats 10"
        "occlusion 60 --samples 1000 --models resnet,vit,mixer --batch 500"
        "backbone 45 --batch 1000 --repeats 50"
        "placement 30 --repeats 50"
        "augment 40 --repeats 20"
        "runner 90 --samples 1000 --models resnet,vit,mixer"
        "patch_attacks 100 --samples 1000 --models resnet,vit,mixer --lavan resnet,vit,mixer"
    )
fi

START=$SECONDS
failed=()
for entry in "${PLAN[@]}"; do
    read -r name limit args <<<"$entry"
    [ -n "${BENCH_ONLY:-}" ] && [[ ",$BENCH_ONLY," != *",$name,"* ]] && continue
    left=$((BUDGET - (SECONDS - START)))
    ((limit > left)) && limit=$left
    if ((limit < 10)); then
        rc=skipped secs=0
        echo "=== $name: skipped, ${left}s of the budget left" | tee -a "$LOG"
    else
        echo "=== $name: bench/$name.py $args --device $DEVICE (limit ${limit}s)" | tee -a "$LOG"
        t0=$SECONDS
        set +e
        # shellcheck disable=SC2086  # args is a list of words
        timeout -k 10 "$limit" "$PY" "bench/$name.py" $args --device "$DEVICE" 2>"$TMP/$name.err" \
            | tee "$TMP/$name.out"
        rc=${PIPESTATUS[0]}
        set -e
        secs=$((SECONDS - t0))
        cat "$TMP/$name.out" >>"$LOG"
        if [ -s "$TMP/$name.err" ]; then
            { echo "--- $name stderr"; cat "$TMP/$name.err"; } >>"$LOG"
        fi
        if [ "$rc" != 0 ]; then
            ((rc == 124 || rc == 137)) && echo "$name: stopped at its limit of ${limit}s" >>"$TMP/$name.err"
            echo "--- $name FAILED (exit $rc); the end of its stderr:"
            tail -n 15 "$TMP/$name.err"
        fi
        echo "=== $name: exit $rc, ${secs}s" | tee -a "$LOG"
    fi
    [ "$rc" = 0 ] || failed+=("$name")
    "$PY" - "$name" "$rc" "$secs" "$args --device $DEVICE" "$TMP/$name.out" "$TMP/$name.err" >>"$RESULTS" <<'EOF'
import json, sys
name, rc, secs, args, out, err = sys.argv[1:]
def lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.strip() for line in f if line.strip()]
    except OSError:
        return []
result = None
for line in reversed(lines(out)):  # the last line that is a JSON object
    try:
        result = json.loads(line)
    except ValueError:
        continue
    if isinstance(result, dict):
        break
    result = None
row = {"script": name, "rc": int(rc) if rc.lstrip("-").isdigit() else rc, "seconds": int(secs), "args": args,
       "result": result}
if rc != "0":
    row["error"] = lines(err)[-5:]
print(json.dumps(row))
EOF
done

{
    echo
    echo "# summary (${OUT}/results.jsonl has each script's result)"
    "$PY" - "$RESULTS" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    row = json.loads(line)
    status = {0: "ok", "skipped": "skipped"}.get(row["rc"], f"FAILED ({row['rc']})")
    print(f"{row['script']:<14} {status:<14} {row['seconds']:>4}s  {row['args']}")
EOF
    echo "total $((SECONDS - START))s; failed: ${failed[*]:-none}"
} | tee -a "$LOG"
((${#failed[@]} == 0))
