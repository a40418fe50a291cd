#!/usr/bin/env bash
# The two calls of this GPU sitting (2026-12-04, second H200 sitting, 15 device minutes), as run from the repository
# root on the device machine, with .whl/ (kornia 0.9.0, kornia_rs 0.2.0 cp312, grad-cam 1.5.7, ttach 0.0.3,
# torchattacks 3.5.1, mlxtend 0.25.0, platformdirs 4.14.9) carried and the leaderboards and unused weights left out
# of the copy (a call carries 64 MiB).
# Call 1 (481 s): `make gpu` as one script.
TOTAL=500 B32=120 B224=150 OUT=$OUT/res PYTHON=python3 bash bench/gpu_run.sh
# Call 2 (233 s): the stream generator's training continued from call 1's resume file.
export PYTHONPATH=$PWD ROBUST_CACHE=/tmp/rc HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD
timeout -k 5 230 python3 bench/generator_stream.py --split train --until 400000 --chunk 1000 --device cuda \
    --out-dir bench/results/generator-stream > "$OUT/train-2.txt" 2>&1
