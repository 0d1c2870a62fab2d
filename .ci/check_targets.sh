#!/usr/bin/env bash
# `cargo check` of the library for the release workflow's other platforms, with the features the
# wheel has (python, cuda) and without (what `cargo test` builds), warnings as errors. These
# compile the paths Linux x86_64 never builds: the kernels without the x86_64 instruction-set
# variants (aarch64) and the loops without GNU OpenMP (macOS, Windows: the rayon pool).
# Only the library: the tests and benchmarks need a C cross compiler for criterion's dependencies.
#
# A target rustup cannot add here (no network, no rustup) is reported as SKIPPED, unless
# CHECK_TARGETS_STRICT=1 (`make check-targets`), which fails then. CHECK_TARGETS overrides the list.
set -euo pipefail
cd "$(dirname "$0")/.."

default="aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-msvc"
read -r -a targets <<<"${CHECK_TARGETS:-$default}"
strict="${CHECK_TARGETS_STRICT:-0}"
installed="$(rustup target list --installed 2>/dev/null || true)"
skipped=()
for target in "${targets[@]}"; do
    if ! grep -qx "$target" <<<"$installed"; then
        if ! log="$(rustup target add "$target" 2>&1)"; then
            head -n 3 <<<"$log" >&2
            if [ "$strict" = 1 ]; then
                echo "check_targets: rustup cannot add $target" >&2
                exit 1
            fi
            echo "check_targets: SKIPPED $target: rustup cannot add it on this machine"
            skipped+=("$target")
            continue
        fi
    fi
    for features in "" "python,cuda"; do
        start=$SECONDS
        RUSTFLAGS="-D warnings" cargo check --quiet --lib --target "$target" \
            ${features:+--features "$features"}
        echo "check_targets: $target [${features:-no features}] ok ($((SECONDS - start)) s)"
    done
done
if [ ${#skipped[@]} -gt 0 ]; then
    echo "check_targets: SKIPPED ${skipped[*]}"
fi
