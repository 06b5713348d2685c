#!/usr/bin/env bash
# Builds the chatico_ffi cdylib and generates the Swift, Kotlin and Python bindings from it
# (UniFFI library mode). Fails if any generation fails, so CI catches a change that breaks
# the bindings.
#
#   bindings/ffi/generate.sh [OUT_DIR]      (default: target/bindings)
#
# Output: OUT_DIR/{swift,kotlin,python}/ and OUT_DIR/python/libchatico_ffi.<so|dylib> (the
# library next to the Python module, as the generated loader expects).
# Environment: PROFILE=release|debug (default debug), CARGO_TARGET_DIR honoured.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
profile="${PROFILE:-debug}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="${1:-$target_dir/bindings}"

cargo_flags=()
if [ "$profile" = "release" ]; then cargo_flags+=(--release); fi

echo "== building chatico-ffi ($profile) and uniffi-bindgen"
cargo build -p chatico-ffi --lib "${cargo_flags[@]}"
cargo build -p chatico-ffi --features cli --bin uniffi-bindgen "${cargo_flags[@]}"

case "$(uname -s)" in
  Darwin) lib="$target_dir/$profile/libchatico_ffi.dylib" ;;
  *) lib="$target_dir/$profile/libchatico_ffi.so" ;;
esac
bindgen="$target_dir/$profile/uniffi-bindgen"
[ -f "$lib" ] || { echo "missing $lib" >&2; exit 1; }

rm -rf "$out"
for lang in swift kotlin python; do
  echo "== generating $lang"
  "$bindgen" generate "$lib" --language "$lang" --no-format --out-dir "$out/$lang"
  n="$(find "$out/$lang" -type f | wc -l)"
  [ "$n" -gt 0 ] || { echo "no $lang sources generated" >&2; exit 1; }
done
cp "$lib" "$out/python/"
echo "== bindings in $out"
find "$out" -type f | sort
