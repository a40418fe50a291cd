#!/usr/bin/env bash
# One prepared GPU sitting (2026-12-04): setup, bench/gpu.sh (32 px), bench/gpu.py (224 px), then the stream
# generator's training for the minutes left. Every output lands in $OUT (8 files at most).
set -u
T0=$SECONDS
TOTAL=${TOTAL:-540}
RUN=resnet-w32-d3-ce-lr0.001-b128-train-s0
{
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD ROBUST_CACHE=/tmp/robust-cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi -L
python3 -c "import timm, torch, kornia, pytorch_grad_cam, torchattacks, robust; print('timm', timm.__version__, 'torch', torch.__version__, torch.cuda.get_device_name())"
timeout 90 python3 -c "from robust.data import load_dataset; [load_dataset('digits-m', s) for s in ('train','test')]; print('digits-m built')"
echo "setup done at $((SECONDS - T0)) s"
} > "$OUT/setup.txt" 2>&1
export PYTHONPATH=/tmp/site:$PWD ROBUST_CACHE=/tmp/robust-cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
mkdir -p "$OUT/bench32"
OUT=$OUT/bench32 BENCH_BUDGET=${B32:-140} bash bench/gpu.sh > /dev/null 2>&1
rm -f "$OUT/bench32/env.txt"
echo "gpu.sh done at $((SECONDS - T0)) s" >> "$OUT/setup.txt"
timeout -k 5 "${B224:-150}" python3 bench/gpu.py > "$OUT/gpu224.txt" 2>&1
echo "gpu.py exit $? at $((SECONDS - T0)) s" >> "$OUT/setup.txt"
left=$((TOTAL - (SECONDS - T0) - 20))
timeout -k 5 "$left" python3 bench/generator_stream.py --split train --until 400000 --chunk 1000 > "$OUT/train.txt" 2>&1
echo "training exit $? at $((SECONDS - T0)) s" >> "$OUT/setup.txt"
cp "bench/results/generator-stream/$RUN.curve.json" "$OUT/"
split -b 12M "bench/results/generator-stream/$RUN.resume.pt" "$OUT/resume.part-"
sha256sum "bench/results/generator-stream/$RUN.resume.pt" >> "$OUT/setup.txt"
