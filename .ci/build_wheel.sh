#!/usr/bin/env bash
# Builds the release artefacts into dist/ (`make wheel`; CI runs it too):
#   1. the sdist (maturin sdist);
#   2. from that sdist, as pip builds it for a user (PEP 517), the portable wheel: abi3
#      (cp310-abi3: one wheel for CPython >= 3.10) and manylinux2014 (glibc 2.17, the oldest
#      glibc Rust's x86_64-unknown-linux-gnu target supports), linked by zig against glibc 2.17's
#      symbols so this machine's newer glibc does not leak into it;
#   3. checks: auditwheel confirms the manylinux_2_17 tag, and the extension needs nothing beyond
#      glibc: the CUDA driver and NVRTC (cudarc's dynamic loading) and torch's libgomp
#      (rust/openmp.rs) are all opened at run time, so none is linked or bundled.
# Environment: WHEEL_ENV (the build tools' virtual environment, default target/wheel-env),
# DIST (default dist), CARGO_TARGET_DIR (default target/wheel), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

env_dir="${WHEEL_ENV:-$repo/target/wheel-env}"
dist="${DIST:-$repo/dist}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/wheel}"
# The build tools, pinned so a release is reproducible (maturin within pyproject's range).
tools=(maturin==1.16.0 ziglang==0.17.1 auditwheel==6.8.2)

if [ ! -x "$env_dir/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$env_dir"
fi
"$env_dir/bin/python" -m pip install --quiet "${tools[@]}"
export PATH="$env_dir/bin:$PATH"

mkdir -p "$dist"
rm -f "$dist"/snnrs-*.whl "$dist"/snnrs-*.tar.gz

start=$SECONDS
maturin sdist --out "$dist"
sdists=("$dist"/snnrs-*.tar.gz)
unpacked="$(mktemp -d)"
trap 'rm -rf "$unpacked"' EXIT
tar -xzf "${sdists[0]}" -C "$unpacked"
# maturin dates every file of the sdist alike (in 2006): with those dates cargo would take the
# last build in CARGO_TARGET_DIR for current and put stale code in the wheel.
find "$unpacked" -exec touch {} +
MATURIN_PEP517_ARGS="--zig --compatibility manylinux2014" \
    "$env_dir/bin/python" -m pip wheel --no-deps --no-build-isolation --no-cache-dir \
    --wheel-dir "$dist" "$unpacked"/snnrs-*/
echo "build_wheel: sdist and wheel built in $((SECONDS - start)) s"

shopt -s nullglob
wheels=("$dist"/snnrs-*-cp310-abi3-manylinux*.whl)
shopt -u nullglob
if [ ${#wheels[@]} -ne 1 ]; then
    echo "build_wheel: expected one cp310-abi3 manylinux wheel in $dist, got:" >&2
    ls -l "$dist" >&2
    exit 1
fi
wheel="${wheels[0]}"

show="$(auditwheel show "$wheel")"
echo "$show"
if ! grep -q 'consistent with the following platform tag' <<<"$show" \
    || ! grep -q '"manylinux_2_17_x86_64"' <<<"$show"; then
    echo "build_wheel: auditwheel does not confirm manylinux_2_17_x86_64" >&2
    exit 1
fi
# The shared libraries the extension links (DT_NEEDED): glibc's own, nothing else.
"$env_dir/bin/python" - "$wheel" <<'EOF'
import io
import sys
import zipfile

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

GLIBC = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
         "ld-linux-x86-64.so.2", "libgcc_s.so.1"}
with zipfile.ZipFile(sys.argv[1]) as whl:
    names = [n for n in whl.namelist() if n.endswith(".so")]
    for name in names:
        elf = ELFFile(io.BytesIO(whl.read(name)))
        needed = {tag.needed for section in elf.iter_sections()
                  if isinstance(section, DynamicSection)
                  for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"}
        print(f"build_wheel: {name} needs {', '.join(sorted(needed))}")
        if needed - GLIBC:
            sys.exit(f"build_wheel: {name} links {sorted(needed - GLIBC)}: "
                     "only glibc may be linked (CUDA, NVRTC and OpenMP load at run time)")
    if names != ["snnrs/_core.abi3.so"]:
        sys.exit(f"build_wheel: expected one extension snnrs/_core.abi3.so, got {names}")
    for needed_file in ("snnrs/py.typed", "snnrs/_core.pyi"):
        if needed_file not in whl.namelist():
            sys.exit(f"build_wheel: {needed_file} is missing from the wheel")
EOF
ls -l "$wheel" "${sdists[0]}"
du -k "$wheel" "${sdists[0]}" | awk '{printf "build_wheel: %s KiB  %s\n", $1, $2}'
