#!/usr/bin/env bash
# On the GPU machine (JAX, no TensorFlow, no registry): install the carried
# wheels, train with the project's train.py on the JAX backend and copy the
# run's small files to $OUT (the device tool brings back at most 8 files).
#     bash tools/gpu/train.sh drive [train.py flags...]
#     bash tools/gpu/train.sh stare --fold 1 [...]
#     bash tools/gpu/train.sh drive --resume      # continues .gpu/runs/drive: on the same warm
#         machine it is still there; on a fresh one, first copy the fetched last.keras,
#         state.json, history.csv and config.yaml (and best.keras) into .gpu/runs/drive here.
#     bash tools/gpu/train.sh carried:drive_random --stop-at +8m
#         # resumes the run carried in carried/drive_random (tracked, so it travels with the
#         # checkout) in .gpu/runs/drive_random; --stop-at ends it cleanly inside the
#         # command's time limit. Back here, put the fetched files in runs/drive_random and
#         # `python tools/carry_run.py pack runs/drive_random` (see GPU.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?usage: tools/gpu/train.sh drive|stare|carried:NAME [train.py flags]}
shift
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1 SAUNETV2_CACHE=/tmp/sa-unetv2-cache
out=${OUT:-/tmp/out}
mkdir -p "$out" .gpu/runs
case "$target" in
    carried:*)
        name=${target#carried:}
        run=.gpu/runs/$name
        if [ ! -f "$run/state.json" ]; then
            python3 tools/carry_run.py unpack "$name" --out "$run"
        fi
        args=(--config "$run/config.yaml" --resume) ;;
    *)
        run=.gpu/runs/$target
        args=(--config "configs/$target.yaml") ;;
esac
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
set +e
python3 train.py "${args[@]}" --data-root .gpu/data --out "$run" \
    --quiet --set evaluate.save_images=false "$@" 2>&1 | tee "$out/train.log"
status=${PIPESTATUS[0]}
set -e
for name in best.keras last.keras history.csv config.yaml state.json; do
    [ -f "$run/$name" ] && cp "$run/$name" "$out/"
done
[ -f "$run/eval/metrics.json" ] && cp "$run/eval/metrics.json" "$out/"
exit "$status"
