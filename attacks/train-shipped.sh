#!/usr/bin/env bash
# (Re)train shipped digits-m artifacts with their presets' recipes and publish them into robust/attacks/weights
# (a source checkout): gan-patch-12pct ([train] of attacks/gan-patch-12pct.toml) and universal-patch-12pct
# (attacks/universal-patch-12pct.toml), each scored on the test split by a fresh attack.
#
# Usage: GAN="resnet mixer" UNIVERSAL="resnet vit" DEVICE=cuda bash attacks/train-shipped.sh
#   GAN, UNIVERSAL  zoo models (digits-m) to train each kind of artifact for (default: none)
#   DEVICE          where to train (default auto)
#   OUT             when set, each trained artifact is also copied there: gan-patch weights as files of their own,
#                   everything else (universal patches, configurations, the manifest) appended to OUT/small.tar
set -euo pipefail

cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-auto}
PY=${PYTHON:-python3}
W=robust/attacks/weights

publish() {  # attack victim option...
    local attack=$1 victim=$2
    shift 2
    echo "# $(date -u +%FT%TZ) $attack $victim"
    "$PY" -m robust attack train "$attack" --victim "zoo:digits-m/$victim" --area 0.12 --device "$DEVICE" \
        --publish --json "$@"
    local file=$W/digits-m-$victim-$attack-12pct.safetensors
    if [[ -n ${OUT:-} ]]; then
        if [[ $attack == gan-patch ]]; then cp "$file" "$OUT/"; else tar -rf "$OUT/small.tar" "$file"; fi
        tar -rf "$OUT/small.tar" "$file.json" "$W/manifest.json"
    fi
}

for m in ${GAN:-}; do publish gan-patch "$m" --epochs 12 --precision bf16; done
for m in ${UNIVERSAL:-}; do publish universal-patch "$m" --steps 300; done
