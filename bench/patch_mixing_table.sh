#!/usr/bin/env bash
# The README's patch-mixing table: the patch-mixing attack on the 1,000 digits-m test images, 3 seeds (0-2), on the
# fine 8 x 8 grid and the coarse 4 x 4 grid, for the seven demo models; one JSON object per line (robust occlusion
# run --json), raw output committed beside the other CPU results of the day.
#   bash bench/patch_mixing_table.sh > bench/results/DATE-cpu/patch-mixing-1000.jsonl
set -euo pipefail
robust=${ROBUST:-.venv/bin/robust}
plots=$(mktemp -d)
trap 'rm -rf "$plots"' EXIT
for grid in 8 4; do
  for model in resnet resnet-8ep resnet-pm vit vit-pm mixer mixer-pm; do
    "$robust" occlusion run patch-mixing --model "zoo:digits-m/$model" --samples 1000 --seeds 3 --grid "$grid" \
      --plot "$plots/$model-$grid.png" --json
  done
done
