#!/usr/bin/env bash
# The prepared GPU sitting (issue 31): what one briefly lent CUDA GPU should do, as one command, every result in one
# folder to commit. `make gpu` runs it; `make gpu DRY_RUN=1` runs every step on the CPU at tiny sizes into a
# temporary folder and leaves the repository as it was (`make suites` does, so that the script cannot rot).
#
#   1. setup: wheels carried in .whl/ installed into /tmp/site when a package is missing (the device machine has no
#      index); versions and the GPU's name;
#   2. bench/gpu.sh: every bench script at 32 px (B32 seconds);
#   3. bench/gpu.py: the kernels at 224 px against their peers, then under CUDA's sync-debug mode (B224 seconds);
#   4. a generator's training on a stream of fresh images (bench/generator_stream.py), resumed from its committed
#      resume file when there is one, for the seconds left of TOTAL; its curve and the resume file (split into 12 MB
#      parts: the transfer's limit) land in OUT. TRAIN chooses the run (bench/gpu_train.sh): photos (default),
#      issue 31's 224-px N8 generator against EfficientNet-Lite0; digits, mixer, whole, mixer-whole, vit-whole,
#      view or pm-whole, issue 25's digits-m stream runs.
#
# Environment: OUT (default bench/results/DATE-gpu; a temporary folder for a dry run), TOTAL (default 540 s, all
# steps together), B32 (default 140 s), B224 (default 150 s), TRAIN (photos, digits, mixer, whole, mixer-whole,
# vit-whole, view, pm-whole), PACK=1 (every result but the resume parts packed into OUT/results.tar: for a machine
# that returns few files), PYTHON.
set -u
cd "$(dirname "$0")/.."
T0=$SECONDS
DRY=${DRY_RUN:-0}
PY=${PYTHON:-python3}
[ "$DRY" = 1 ] && TRAIN=${TRAIN:-digits}  # a dry run's default: the quick one; TRAIN=photos works too
source bench/gpu_train.sh
train_run "${TRAIN:=photos}" || { echo "TRAIN=$TRAIN is not valid; expected $TRAIN_RUNS"; exit 2; }
CURVES=bench/results/generator-stream
if [ "$DRY" = 1 ]; then
    OUT=${OUT:-$(mktemp -d)}
    TOTAL=${TOTAL:-240} B32=${B32:-90} B224=${B224:-90} DEVICE=cpu
    WORK=$(mktemp -d)  # the training continues a copy: the committed resume file is never touched
    cp "$CURVES/$RUN".* "$WORK/" 2>/dev/null
    CURVES=$WORK
    trap 'rm -rf "$WORK"' EXIT
else
    OUT=${OUT:-bench/results/$(date -u +%F)-gpu}
    TOTAL=${TOTAL:-540} B32=${B32:-140} B224=${B224:-150} DEVICE=cuda
fi
mkdir -p "$OUT"
export ROBUST_CACHE=${ROBUST_CACHE:-/tmp/robust-cache} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if [ "$DRY" != 1 ] && ! "$PY" -c "import kornia, pytorch_grad_cam, torchattacks" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        >"$OUT/setup.txt" 2>&1 || { echo "setup: the wheels in .whl/ did not install (see $OUT/setup.txt)"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
fi
log() { echo "$* at $((SECONDS - T0)) s" | tee -a "$OUT/setup.txt"; }
"$PY" -c "import torch, robust; print('torch', torch.__version__, 'robust', robust.__version__, 'device',
torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" >>"$OUT/setup.txt" 2>&1 || exit 1
log "setup done (dry run: $DRY)"

mkdir -p "$OUT/bench32"
only=""
[ "$DRY" = 1 ] && only=cam  # one script checks the wiring; the quick run of them all is a slow test
OUT=$OUT/bench32 BENCH_BUDGET=$B32 BENCH_DEVICE=$DEVICE BENCH_QUICK=$DRY BENCH_ONLY=$only PYTHON=$PY bash bench/gpu.sh \
    >/dev/null 2>&1
log "bench/gpu.sh exit $?"

quick=()
[ "$DRY" = 1 ] && quick=(--quick --kernels cam)
timeout -k 5 "$B224" "$PY" bench/gpu.py --device "$DEVICE" "${quick[@]}" --out "$OUT/gpu224.json" >"$OUT/gpu224.txt" 2>&1
log "bench/gpu.py exit $?"

left=$((TOTAL - (SECONDS - T0) - 20))
steps=0
if [ -f "$CURVES/$RUN.curve.json" ]; then
    steps=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['history'][-1]['step'])" \
        "$CURVES/$RUN.curve.json")
fi
until=$((DRY == 1 ? steps + 2 : 400000))
chunk=$((DRY == 1 ? 2 : 250))
if ((left > 10)); then
    timeout -k 5 "$left" "$PY" bench/generator_stream.py "${ARGS[@]}" --split train --until "$until" \
        --chunk "$chunk" --device "$DEVICE" --out-dir "$CURVES" >"$OUT/train.txt" 2>&1
    log "training $TRAIN exit $? (from step $steps)"
else
    log "training skipped: ${left} s left"
fi
if [ -f "$CURVES/$RUN.resume.pt" ]; then
    cp "$CURVES/$RUN.curve.json" "$OUT/"
    split -b 12M "$CURVES/$RUN.resume.pt" "$OUT/resume.part-"
    (cd "$CURVES" && sha256sum "$RUN.resume.pt") >>"$OUT/setup.txt"
fi
log "done; results in $OUT"
if [ "${PACK:-0}" = 1 ]; then
    (cd "$OUT" && find . -type f ! -name 'resume.part-*' ! -name results.tar | sort | tar -cf results.tar -T - \
        && find . -type f ! -name 'resume.part-*' ! -name results.tar -delete && find . -type d -empty -delete)
fi
