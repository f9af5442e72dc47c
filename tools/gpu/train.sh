#!/usr/bin/env bash
# On the GPU machine (JAX, no TensorFlow, no registry): install the carried
# wheels, train one of the four models with the project's train.py on the JAX
# backend and copy the run's small files to $OUT. docs/gpu.md has the whole story.
#     bash tools/gpu/train.sh drive [MODEL] [train.py flags...]
#         MODEL: sa_unetv2 (the default), sa_unet, unet or attention_unet; the run folder is
#         .gpu/runs/drive_MODEL (.gpu/runs/drive without MODEL). The same command again
#         continues the run (--resume is added when the folder holds one), until it ends.
#     bash tools/gpu/train.sh drive attention_unet --mixed-precision mixed_bfloat16
#     bash tools/gpu/train.sh stare unet --fold 1 [...]
#     bash tools/gpu/train.sh carried:drive_random
#         # resumes the run carried in carried/drive_random (tracked, so it travels with the
#         # checkout) in .gpu/runs/drive_random. Back here, put the fetched files in
#         # runs/drive_random and `python tools/carry_run.py pack runs/drive_random`.
# Training stops cleanly after the last epoch that ends within STOP_AT (default +8m: one
# call fits the device tool's 10 minutes with the evaluation; STOP_AT=none: no limit; a
# --stop-at flag wins). Checkpoints over PART_MB MiB (default 15; the tool brings back
# 16 MiB a file) come back as best.keras.partNN without optimizer state
# (`cat best.keras.part* > best.keras`); a last.keras that large stays on the machine.
# Environment: OUT (default /tmp/out), GPU_ROOT (wheels/, data/, runs/; default .gpu),
# PYTHON (default python3), STOP_AT, PART_MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: tools/gpu/train.sh drive|stare|demo|carried:NAME [MODEL] [train.py flags]"
target=${1:?$usage}
shift
model=
if [[ $# -gt 0 && $1 != -* && $target != carried:* ]]; then
    model=$1
    shift
fi
root=${GPU_ROOT:-.gpu}
python=${PYTHON:-python3}
stop_at=${STOP_AT-+8m}
part_mb=${PART_MB:-15}
out=${OUT:-/tmp/out}
if compgen -G "$root/wheels/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
        --upgrade "$root"/wheels/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 SAUNETV2_CACHE=${SAUNETV2_CACHE:-/tmp/sa-unetv2-cache}
mkdir -p "$out" "$root/runs"

case "$target" in
    carried:*)
        name=${target#carried:}
        run=$root/runs/$name
        if [ ! -f "$run/state.json" ]; then
            "$python" tools/carry_run.py unpack "$name" --out "$run"
        fi
        args=(--config "$run/config.yaml") ;;
    *)
        run=$root/runs/$target${model:+_$model}
        args=(--config "configs/$target.yaml")
        [ -n "$model" ] && args+=(--set "model.name=$model") ;;
esac
# Continue the run in the folder unless the flags say what to do with it.
if [ -f "$run/state.json" ] && [[ " $* " != *" --resume "* && " $* " != *" --overwrite "* ]]; then
    args+=(--resume)
fi
if [ -n "$stop_at" ] && [ "$stop_at" != none ]; then
    args+=(--stop-at "$stop_at")
fi
ended() {  # the run in the folder has done its epochs or stopped early (unless --epochs extends it)
    [ -f "$run/state.json" ] && [[ " $* " != *" --epochs "* ]] && "$python" -c "
import sys; from pathlib import Path
from training.carry import run_ended; from utils.config import load_config; from utils.io import read_json
run = Path(sys.argv[1])
sys.exit(0 if run_ended(read_json(run / 'state.json'), load_config(run / 'config.yaml')) else 1)" "$run"
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
if ended "$@"; then
    echo "the run in $run has ended (state.json): nothing to train; its files follow" | tee "$out/train.log"
    status=0
else
    set +e
    "$python" train.py "${args[@]}" --data-root "$root/data" --out "$run" --quiet \
        --set evaluate.save_images=false --set evaluate.engine=keras "$@" 2>&1 | tee "$out/train.log"
    status=${PIPESTATUS[0]}
    set -e
fi

limit=$((part_mb * 1024 * 1024))
for name in best.keras last.keras history.csv config.yaml state.json eval/metrics.json; do
    file=$run/$name
    [ -f "$file" ] || continue
    if [ "$(stat -c %s "$file")" -le "$limit" ]; then
        cp "$file" "$out/"
    elif [ "$name" = best.keras ]; then
        # Weights only (a third of the size), in parts the device tool can bring back.
        "$python" -c "import sys; from models import load_model; load_model(sys.argv[1]).save(sys.argv[2])" \
            "$file" /tmp/best_weights_only.keras
        split -b "${part_mb}m" -d -a 2 /tmp/best_weights_only.keras "$out/best.keras.part"
        echo "best.keras came back in parts without optimizer state: cat best.keras.part* > best.keras"
    else
        echo "$name ($(($(stat -c %s "$file") / 1048576)) MiB) is over ${part_mb} MiB: not copied to $out"
    fi
done
exit "$status"
