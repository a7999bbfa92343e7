#!/usr/bin/env sh
# Make or check the lock: uv.lock (universal, from pyproject.toml) and its pip-installable exports.
#   requirements/lock.sh write   re-resolve after editing pyproject (keeps every pin that still fits)
#   requirements/lock.sh check   fail with one line if pyproject, uv.lock and the exports disagree
# UV names the pinned uv binary (`make .venv-tools/bin/uv` installs it from requirements/uv.txt).
set -eu
cd "$(dirname "$0")/.."
UV=${UV:-.venv-tools/bin/uv}
LOCK=requirements/lock.txt
LOCK_NO_TORCH=requirements/lock-without-torch.txt
BUILD_LOCK=requirements/build.txt

export_lock() {
    "$UV" export --frozen --quiet --no-header --no-emit-project --extra test "$@"
}

export_build() {
    "$UV" export --frozen --quiet --no-header --no-emit-project --only-group build "$@"
}

# What a machine with torch preinstalled already has: torch, torchaudio and their CUDA stack.
export_without_torch() {
    export_lock $(sed -n 's/^name = "\(torch\|torchaudio\|triton\|cuda-[a-z-]*\|nvidia-[a-z0-9-]*\)"$/--no-emit-package \1/p' uv.lock) "$@"
}

case "${1:-}" in
write)
    "$UV" lock
    export_lock -o "$LOCK"
    export_without_torch -o "$LOCK_NO_TORCH"
    export_build -o "$BUILD_LOCK"
    ;;
check)
    if ! "$UV" lock --check --offline --quiet 2>/dev/null && ! "$UV" lock --check --quiet 2>/dev/null; then
        echo "stale lock: pyproject.toml's dependencies changed since uv.lock was made; run 'make lock' and commit uv.lock and requirements/" >&2
        exit 1
    fi
    fresh=$(mktemp -d)
    trap 'rm -rf "$fresh"' EXIT
    export_lock -o "$fresh/lock.txt"
    export_without_torch -o "$fresh/lock-without-torch.txt"
    export_build -o "$fresh/build.txt"
    if ! cmp -s "$fresh/lock.txt" "$LOCK" || ! cmp -s "$fresh/lock-without-torch.txt" "$LOCK_NO_TORCH" \
        || ! cmp -s "$fresh/build.txt" "$BUILD_LOCK"; then
        echo "stale lock: requirements/*.txt do not match uv.lock; run 'make lock' and commit requirements/" >&2
        exit 1
    fi
    ;;
*)
    echo "usage: $0 write|check" >&2
    exit 2
    ;;
esac
