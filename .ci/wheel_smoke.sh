#!/usr/bin/env bash
# Installs a built snnrs wheel the way a user would, into a fresh virtual environment outside the
# source tree with no Rust toolchain on PATH, and runs .ci/smoke_wheel.py there.
#
# Usage: .ci/wheel_smoke.sh [WHEEL]      (default: the one snnrs wheel in dist/)
#   SMOKE_CONSTRAINTS=FILE  pip constraints for the dependencies (CI: the test environment's
#                           versions, so the smoke test runs on the torch the tests ran on)
#   SMOKE_DIR=DIR           keep the environment and the run in DIR (default: a temporary folder,
#                           removed afterwards, in SMOKE_TMPDIR, else TMPDIR, else /tmp)
#   PYTHON=python3          the interpreter the environment is made from
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

if [ $# -gt 0 ]; then
    wheel="$1"
else
    shopt -s nullglob
    wheels=("$repo"/dist/snnrs-*.whl)
    shopt -u nullglob
    if [ ${#wheels[@]} -ne 1 ]; then
        echo "wheel_smoke: expected one snnrs wheel in $repo/dist, found ${#wheels[@]}" >&2
        exit 1
    fi
    wheel="${wheels[0]}"
fi
wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
[ -f "$wheel" ] || { echo "wheel_smoke: no wheel at $wheel" >&2; exit 1; }
constraints=()
if [ -n "${SMOKE_CONSTRAINTS:-}" ]; then
    constraints_dir="$(cd "$(dirname "$SMOKE_CONSTRAINTS")" && pwd)"
    constraints=(-c "$constraints_dir/$(basename "$SMOKE_CONSTRAINTS")")
fi

if [ -n "${SMOKE_DIR:-}" ]; then
    work="$(realpath -m "$SMOKE_DIR")"
else
    work="$(realpath -m "${SMOKE_TMPDIR:-${TMPDIR:-/tmp}}")/snnrs-wheel-smoke.XXXXXX"
fi
case "$work/" in
    "$repo"/*) echo "wheel_smoke: $work is inside the source tree" >&2; exit 1 ;;
esac
if [ -n "${SMOKE_DIR:-}" ]; then
    rm -rf "$work/venv"
    mkdir -p "$work"
else
    work="$(mktemp -d "$work")"
    trap 'rm -rf "$work"' EXIT
fi

# PATH without any Rust toolchain and without the active virtual environment.
clean_path=""
IFS=: read -r -a entries <<<"$PATH"
for d in "${entries[@]}"; do
    [ -n "$d" ] || continue
    if [ -x "$d/cargo" ] || [ -x "$d/rustc" ] || [ -x "$d/rustup" ]; then continue; fi
    if [ -n "${VIRTUAL_ENV:-}" ] && [ "$d" = "$VIRTUAL_ENV/bin" ]; then continue; fi
    clean_path="${clean_path:+$clean_path:}$d"
done
export PATH="$clean_path"
unset VIRTUAL_ENV PYTHONPATH PYTHONHOME PYTHONSTARTUP CARGO_TARGET_DIR RUSTUP_TOOLCHAIN
for tool in cargo rustc rustup; do
    if command -v "$tool" >/dev/null; then
        echo "wheel_smoke: $tool is still on PATH ($(command -v "$tool"))" >&2
        exit 1
    fi
done

cd "$work"
python="${PYTHON:-python3}"
start=$SECONDS
"$python" -m venv venv
echo "wheel_smoke: pip install $(basename "$wheel") into a fresh environment in $work"
# --no-compile: byte-compiling torch's files up front costs a minute and tests nothing here.
venv/bin/python -m pip install --quiet --no-compile --only-binary=snnrs "${constraints[@]}" \
    "$wheel"
installed=$((SECONDS - start))
cp "$here/smoke_wheel.py" "$work/"
export PATH="$work/venv/bin:$PATH"  # as an activated environment: `snnrs` is the venv's
start=$SECONDS
python smoke_wheel.py --source "$repo" --work "$work"
echo "wheel_smoke: install ${installed} s, smoke test $((SECONDS - start)) s"
