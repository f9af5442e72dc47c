#!/usr/bin/env bash
# Fill .gpu/ (ignored by git) with what the GPU machine lacks, so that the
# device tool can carry it: Keras and its two missing dependencies as wheels
# for that machine's Python, and the DRIVE and STARE files as downloaded.
# Run here, where the package registry is reachable:
#     bash tools/gpu/prepare.sh [DATA_ROOT]        # default: $SAUNETV2_DATA_ROOT or ../shared/data
# Then on the device: run(command="bash tools/gpu/train.sh drive", carry=[".gpu"]).
# PYVER=3.11 makes wheels for this machine's Python instead (to rehearse the run here).
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-${SAUNETV2_DATA_ROOT:-../shared/data}}
pyver=${PYVER:-3.12}
keras_version=$(python3 -c "import keras; print(keras.__version__)")  # the version the tests ran with

rm -rf .gpu
mkdir -p .gpu/wheels .gpu/data
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/wheels "keras==$keras_version" namex optree
for dataset in DRIVE STARE; do
    [ -d "$data/$dataset" ] && cp -r "$data/$dataset" .gpu/data/
done
ls .gpu/wheels
du -sh .gpu
