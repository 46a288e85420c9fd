#!/usr/bin/env bash
# Prove dlx's CUDA path on one GPU machine, in one call: `make gpu-check`, `make test-gpu` and
# the whole chapter (`make reproduce SEEDS=1 ARGS=trainer.accelerator=cuda`), every output in $OUT.
#
#   bash scripts/gpu_proof.sh prepare   # 1. HERE (data, PyPI): fills .gpu/ (git-ignored) with
#                                       #    the data and the wheels the GPU machine lacks
#   bash scripts/gpu_proof.sh           # 2. THERE, e.g. through the device tool:
#        run(command="bash scripts/gpu_proof.sh", carry=[".gpu"], timeout_s=540)
#   DEVICE=cpu SMOKE=1 OUT=/tmp/gpuproof PYTHON=.venv/bin/python bash scripts/gpu_proof.sh
#                                       #    a short rehearsal of 2. on the CPU
#
# The GPU machine reaches no package index and holds a python3 with torch, numpy, matplotlib,
# scikit-learn, rich, pytest (and pytest-xdist) but not Hydra/OmegaConf: step 2 makes a venv
# on top of that python3 (its packages stay visible through a .pth file) and installs the
# project into it from pyproject.toml, taking the missing packages from .gpu/whl (no index).
# Its data are .gpu/data (a copy of ../shared/data, which does not travel to that machine),
# or DLX_DATA_DIR; CIFAR-10 is built from the JPEG copy into $WORK/data.
#
# The most important numbers come first: the gpu-check table, then the suite, then the
# chapter; each step has its own time limit, so one slow step cannot eat the others' time.
#
# Settings (environment): OUT (outputs; the device tool sets it), WORK (scratch, default
# /tmp/dlx-gpu-proof), DEVICE (cuda | cpu), SMOKE=1 (tiny settings), STEPS (default
# check,test,repro), T_CHECK/T_TEST/T_REPRO (seconds per step), TEST_WORKERS (pytest-xdist
# processes; 0: none), PYTHON (the interpreter holding torch; default python3).
# Exit status: 0 when every step passed, else 1 (the summary says which failed).

set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}

usage() { sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; }

# -- prepare: here, where ../shared/data and PyPI are --------------------------------------------

prepare() {
    local src=${DLX_DATA_DIR:-$ROOT/../shared/data} dest=$ROOT/.gpu
    [ -d "$src/MNIST" ] || { echo "error: no data at $src (set DLX_DATA_DIR)" >&2; return 2; }
    mkdir -p "$dest/data" "$dest/whl"
    for d in MNIST cifar10 imdb; do
        [ -e "$dest/data/$d" ] || cp -rL "$src/$d" "$dest/data/$d" || return 1
    done
    # The versions this checkout is tested with: the ones installed beside $PY.
    local pkgs
    pkgs=$("$PY" -c 'from importlib.metadata import version as v
print(*(f"{n}=={v(n)}" for n in ("hydra-core", "omegaconf", "antlr4-python3-runtime")))') || {
        echo "error: $PY lacks hydra-core/omegaconf (set PYTHON to the project's venv)" >&2
        return 2
    }
    rm -f "$dest"/whl/*
    # Pure-Python wheels; antlr4's 4.9 runtime is published only as an sdist: built here.
    "$PY" -m pip wheel --quiet --no-deps --no-cache-dir -w "$dest/whl" $pkgs || return 1
    git rev-parse HEAD >"$dest/commit.txt" 2>/dev/null || echo unknown >"$dest/commit.txt"
    git status --porcelain --untracked-files=no | sed 's/^/  changed: /' >>"$dest/commit.txt"
    ls "$dest/whl"
    du -sh "$dest"
    local tree
    tree=$(($(git ls-files -z | xargs -0 cat 2>/dev/null | wc -c) + $(du -sb "$dest" | cut -f1)))
    echo "travels: about $((tree / 1048576)) MiB of the device tool's 64 MiB (tree + .gpu)"
    echo 'next: run(command="bash scripts/gpu_proof.sh", carry=[".gpu"], timeout_s=540)'
}

# -- the steps on the GPU machine ---------------------------------------------------------------

OUT=${OUT:-$ROOT/outputs/gpu_proof}
WORK=${WORK:-/tmp/dlx-gpu-proof}
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
STEPS=${STEPS:-check,test,repro}
T_CHECK=${T_CHECK:-150}
T_TEST=${T_TEST:-150}
T_REPRO=${T_REPRO:-120}
VENV=$WORK/venv
RESULTS=()
rc_last=0

banner() { printf '\n==== %s  (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

versions() {
    banner "versions"
    echo "commit (at prepare): $(head -1 .gpu/commit.txt 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)"
    grep '^  changed:' .gpu/commit.txt 2>/dev/null
    echo "host: $(uname -srm), $(nproc) cores"
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader |
            sed 's/^/gpu: /'
        nvidia-smi | grep -o 'CUDA Version: [0-9.]*' | sed 's/^/driver supports /'
    else
        echo "gpu: no nvidia-smi"
    fi
    "$PY" - <<'EOF'
import platform, torch
print(f"python {platform.python_version()} ({platform.python_implementation()})")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
if torch.cuda.is_available():
    cap = torch.cuda.get_device_capability()
    print(f"torch sees {torch.cuda.device_count()} x {torch.cuda.get_device_name()} (sm_{cap[0]}{cap[1]})")
else:
    print("torch sees no CUDA device")
EOF
}

make_env() {
    banner "environment: $VENV on top of $PY"
    if [ -x "$VENV/bin/dlx" ] && "$VENV/bin/python" -c 'import dlx, hydra' 2>/dev/null; then
        echo "reusing $VENV"
        return 0
    fi
    "$PY" -m venv --clear --without-pip "$VENV" || return 1
    local site
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # The base interpreter's packages (torch and the rest), .pth files included, after ours.
    "$PY" -c 'import sys
for p in sys.path:
    if p.endswith(("site-packages", "dist-packages")):
        print(f"import site; site.addsitedir({p!r})")' >"$site/_dlx_base.pth"
    cat "$site/_dlx_base.pth"
    # pyproject.toml decides what is needed; what the base lacks comes from .gpu/whl.
    local pip=("$VENV/bin/python" -m pip install --quiet --no-input --disable-pip-version-check
        --no-index --find-links "$ROOT/.gpu/whl" --no-build-isolation)
    if ! "${pip[@]}" -e "$ROOT"; then
        # One shot at the GPU: rather numbers than nothing. Said loudly, and in the summary.
        echo "WARNING: pip could not satisfy pyproject.toml here (above); installing the" \
            "wheels and dlx with --no-deps instead"
        RESULTS+=("environment: pyproject's requirements NOT satisfied; --no-deps install")
        "${pip[@]}" --no-deps "$ROOT"/.gpu/whl/*.whl && "${pip[@]}" --no-deps -e "$ROOT" || return 1
    fi
    touch "$VENV/.installed-stamp"  # the Makefile's `install` is then a no-op: no index here
    "$VENV/bin/python" -c 'import dlx, hydra, omegaconf, torch
print(f"dlx {dlx.__version__} from {dlx.__file__}; hydra {hydra.__version__}, "
      f"omegaconf {omegaconf.__version__}, torch {torch.__version__}")'
}

make_data() {
    local src=${DLX_DATA_DIR:-}
    if [ -z "$src" ]; then
        for d in "$ROOT/.gpu/data" "$ROOT/shared/data" "$ROOT/../shared/data" "$ROOT/data"; do
            [ -d "$d/MNIST" ] && { src=$d; break; }
        done
    fi
    banner "data: ${src:-none found} -> $WORK/data"
    [ -n "$src" ] && [ -d "$src" ] || { echo "error: no data (.gpu/data or DLX_DATA_DIR)"; return 1; }
    src=$(cd "$src" && pwd)
    mkdir -p "$WORK/data"
    for d in MNIST imdb cifar-10-batches-py; do
        [ -e "$src/$d" ] && ln -sfn "$src/$d" "$WORK/data/$d"
    done
    if [ ! -f "$WORK/data/cifar-10-batches-py/test_batch" ] && [ -f "$src/cifar10/build.py" ]; then
        echo "building CIFAR-10 from the JPEG copy ..."
        "$PY" "$src/cifar10/build.py" "$WORK/data" || return 1
    fi
    ls -l "$WORK/data"
    export DLX_DATA_DIR=$WORK/data DLX_CACHE_DIR=$WORK/cache
}

# `make NAME ARGS=...`, or the same recipe where the machine has no make.
target() {
    local name=$1 args=$2
    if command -v make >/dev/null 2>&1; then
        make --no-print-directory "$name" VENV="$VENV" DEVICE="$DEVICE" SEEDS=1 "ARGS=$args"
        return
    fi
    echo "(no make here: running the target's recipe)"
    case $name in
    gpu-check) eval "'$VENV/bin/python' scripts/gpu_check.py $args" ;;
    test-gpu) eval "DLX_TEST_DEVICE=$DEVICE '$VENV/bin/python' -m pytest -m device $args" ;;
    reproduce) eval "'$VENV/bin/python' scripts/reproduce.py --seeds 1 $args" ;;
    esac
}

# step LABEL SECONDS LOG TARGET ARGS: one target under its own time limit, logged to $OUT/LOG.
step() {
    local label=$1 limit=$2 log=$OUT/$3 t0 rc
    shift 3
    banner "$label: make $1 ARGS=\"$2\" (limit ${limit} s)"
    t0=$(date +%s)
    export -f target
    export VENV DEVICE
    timeout -k 15 "$limit" bash -c 'target "$@"' _ "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    local took=$(($(date +%s) - t0))
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "TIMED OUT: $label stopped at its limit of ${limit} s"
    RESULTS+=("$label: exit $rc in ${took} s")
    rc_last=$rc
    return "$rc"
}

summary() {
    banner "summary"
    {
        echo "# gpu_proof $(date -u +%Y-%m-%dT%H:%MZ), DEVICE=$DEVICE, SMOKE=$SMOKE"
        echo
        sed -n '/^==== versions/,/^====/p' "$OUT/proof.log" 2>/dev/null | grep -v '^===='
        echo
        echo "## steps"
        printf -- '- %s\n' "${RESULTS[@]}"
        if [ -f "$OUT/gpu_check.log" ]; then
            echo
            echo "## make gpu-check"
            grep -E '^\||^total|^FAILED|^device|^torch' "$OUT/gpu_check.log"
        fi
        if [ -f "$OUT/test_gpu.log" ]; then
            echo
            echo "## make test-gpu"
            grep -E '^(FAILED|ERROR|SKIPPED)|[0-9]+ (passed|failed|error)' "$OUT/test_gpu.log" | tail -40
        fi
        if [ -f "$OUT/reproduce.log" ]; then
            echo
            echo "## make reproduce SEEDS=1 (the chapter)"
            # the table as far as it got (reproduce.py rewrites it after each experiment)
            grep -E '^\||^Measured' "$OUT/REPRODUCTION.md" 2>/dev/null
            grep -E '^total wall time|^TIMED OUT' "$OUT/reproduce.log"
            echo "per experiment (dlx train -m, start-up included):"
            awk '/ -m experiment=book\// { match($0, /experiment=book\/[^ ]+/)
                                           name = substr($0, RSTART + 16, RLENGTH - 16) }
                 /^  [0-9]+ s$/ { print "- " name ":" $0 }' "$OUT/reproduce.log"
            grep -E '^the chapter: ' "$OUT/proof.log" | tail -1
        fi
    } >"$OUT/summary.md"
    cat "$OUT/summary.md"
}

main() {
    mkdir -p "$OUT" "$WORK"
    echo "gpu_proof: DEVICE=$DEVICE SMOKE=$SMOKE STEPS=$STEPS OUT=$OUT WORK=$WORK"
    echo "limits: gpu-check ${T_CHECK} s, test-gpu ${T_TEST} s, reproduce ${T_REPRO} s"
    "$PY" -c 'import torch' 2>/dev/null || {
        echo "error: $PY cannot import torch (set PYTHON to the interpreter that holds it)"
        return 2
    }
    versions
    if [ "$DEVICE" = cuda ] && ! "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
        echo "error: DEVICE=cuda and torch sees no CUDA device (DEVICE=cpu SMOKE=1 rehearses on the CPU)"
        return 2
    fi
    make_env || { echo "error: could not make the environment"; return 1; }
    make_data || { echo "error: could not make the data"; return 1; }

    local check="--device $DEVICE --time-limit $((T_CHECK - 20))"
    local tests="-q -p no:cacheprovider --durations=15"
    local workers=${TEST_WORKERS:-4}
    local repro=(--out "$WORK/reproduce" --doc "$OUT/REPRODUCTION.md" "trainer.accelerator=$DEVICE")
    if [ "$SMOKE" = 1 ]; then
        # digits instead of the book's data; a few tests; three listings, briefly
        check="$check --dry --no-compile --only 6_13"
        tests="$tests -m 'device and not slow' tests/engine/test_trainer.py"
        workers=${TEST_WORKERS:-0}
        repro+=(--only 6_9,6_12,6_16 trainer.max_epochs=1 trainer.limit_train_batches=20)
    fi
    if [ "$workers" != 0 ] && "$VENV/bin/python" -c 'import xdist' 2>/dev/null; then
        tests="$tests -n $workers --dist loadfile"  # one GPU, shared by a few test processes
    fi
    local failed=0 t0
    [[ $STEPS == *check* ]] && { step "gpu-check" "$T_CHECK" gpu_check.log gpu-check "$check" || failed=1; }
    [[ $STEPS == *test* ]] && { step "test-gpu" "$T_TEST" test_gpu.log test-gpu "$tests" || failed=1; }
    if [[ $STEPS == *repro* ]]; then
        rm -rf "$WORK/reproduce"  # an earlier run's metrics must not stand in for this one's
        t0=$(date +%s)
        if step "reproduce" "$T_REPRO" reproduce.log reproduce "${repro[*]}"; then
            echo "the chapter: $(($(date +%s) - t0)) s wall on $DEVICE (make reproduce, start-up included)"
        else
            failed=1
            echo "the chapter: NOT complete (exit $rc_last) after $(($(date +%s) - t0)) s on $DEVICE"
        fi
        # metrics, configs, logs and figures of every run; no checkpoints
        tar -czf "$OUT/outputs.tar.gz" -C "$WORK" --exclude='*.pt' reproduce 2>/dev/null
        # the device tool brings back files of up to 16 MiB
        if [ "$(stat -c %s "$OUT/outputs.tar.gz" 2>/dev/null || echo 0)" -gt 15000000 ]; then
            tar -czf "$OUT/outputs.tar.gz" -C "$WORK" --exclude='*.pt' --exclude='*.png' reproduce
        fi
    fi
    summary
    return "$failed"
}

case ${1:-} in
prepare) prepare ;;
-h | --help) usage ;;
"")
    mkdir -p "$OUT"
    # a reused $OUT must not show an earlier run's results (the device tool empties it)
    rm -f "$OUT"/{proof.log,gpu_check.log,test_gpu.log,reproduce.log,REPRODUCTION.md,summary.md,outputs.tar.gz}
    main 2>&1 | tee "$OUT/proof.log"
    exit "${PIPESTATUS[0]}"
    ;;
*)
    usage >&2
    exit 2
    ;;
esac
