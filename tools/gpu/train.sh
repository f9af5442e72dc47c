#!/usr/bin/env bash
# On the GPU machine (JAX, no TensorFlow, no registry): install the carried
# wheels, train with the project's train.py on the JAX backend and copy the
# run's small files to $OUT (the device tool brings back at most 8 files).
#     bash tools/gpu/train.sh drive [train.py flags...]
#     bash tools/gpu/train.sh stare --fold 1 [...]
#     bash tools/gpu/train.sh drive --resume      # continues .gpu/runs/drive: on the same warm
#         machine it is still there; on a fresh one, first copy the fetched last.keras,
#         state.json, history.csv and config.yaml (and best.keras) into .gpu/runs/drive here.
set -euo pipefail
cd "$(dirname "$0")/../.."
dataset=${1:?usage: tools/gpu/train.sh drive|stare [train.py flags]}
shift
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1 SAUNETV2_CACHE=/tmp/sa-unetv2-cache
out=${OUT:-/tmp/out}
run=.gpu/runs/$dataset
mkdir -p "$out" .gpu/runs
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
set +e
python3 train.py --config "configs/$dataset.yaml" --data-root .gpu/data --out "$run" \
    --quiet --set evaluate.save_images=false "$@" 2>&1 | tee "$out/train.log"
status=${PIPESTATUS[0]}
set -e
for name in best.keras last.keras history.csv config.yaml state.json; do
    [ -f "$run/$name" ] && cp "$run/$name" "$out/"
done
[ -f "$run/eval/metrics.json" ] && cp "$run/eval/metrics.json" "$out/"
exit "$status"
