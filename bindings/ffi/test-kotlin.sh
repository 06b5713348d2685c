#!/usr/bin/env bash
# Generates the bindings (generate.sh), compiles the generated Kotlin with the Kotlin test
# program (tests/kotlin/), builds the example server, and runs the program on the JVM against
# it: the same flow and checks as test-python.sh. Prints "N passed, N failed" and fails when a
# test fails.
#
# What it needs, installed on first use:
#   - a JDK (17 or newer: java and javac on PATH);
#   - the Kotlin compiler, npm's kotlin-compiler package (the full JVM compiler; its lib/
#     carries kotlin-stdlib.jar and kotlinx-coroutines-core-jvm.jar), installed with npm into
#     the cache directory below;
#   - JNA, Debian's libjna-java (/usr/share/java/jna.jar), installed with apt-get when missing;
#     or point CHATICO_JNA_JAR at a jna.jar.
# Cache (outside the checkout): $CHATICO_KOTLIN_CACHE, by default $CARGO_TARGET_DIR/kotlin, or
# ~/.cache/chatico-kotlin without CARGO_TARGET_DIR. It keeps the compiler and the compiled jars,
# keyed by a hash of their sources, so a rerun only compiles what changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/bindings"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then default_cache="$CARGO_TARGET_DIR/kotlin"; else default_cache="$HOME/.cache/chatico-kotlin"; fi
cache="${CHATICO_KOTLIN_CACHE:-$default_cache}"
kotlin_version=2.4.20

step() { printf '== %s\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

# ---- toolchain ----
command -v java >/dev/null && command -v javac >/dev/null || { echo "test-kotlin: needs a JDK (java, javac)" >&2; exit 1; }
java_major="$(javac -version 2>&1 | sed -E 's/^javac ([0-9]+).*/\1/')"
[ "$java_major" -ge 17 ] 2>/dev/null || { echo "test-kotlin: needs JDK 17 or newer (javac says: $(javac -version 2>&1))" >&2; exit 1; }

compiler="$cache/compiler/node_modules/kotlin-compiler"
if [ "$(cat "$compiler/build.txt" 2>/dev/null)" != "$kotlin_version" ]; then
  step "installing the Kotlin compiler $kotlin_version (npm) into $cache/compiler"
  command -v npm >/dev/null || { echo "test-kotlin: needs npm to install the Kotlin compiler" >&2; exit 1; }
  t=$(date +%s)
  rm -rf "$cache/compiler"
  mkdir -p "$cache/compiler"
  npm install --prefix "$cache/compiler" --no-audit --no-fund --loglevel=error "kotlin-compiler@$kotlin_version"
  [ "$(cat "$compiler/build.txt" 2>/dev/null)" = "$kotlin_version" ] || { echo "test-kotlin: the kotlin-compiler package is not $kotlin_version" >&2; exit 1; }
  echo "   ($(elapsed "$t"))"
fi
kotlinc="$compiler/bin/kotlinc"
stdlib="$compiler/lib/kotlin-stdlib.jar"
coroutines="$compiler/lib/kotlinx-coroutines-core-jvm.jar"
for f in "$kotlinc" "$stdlib" "$coroutines"; do [ -f "$f" ] || { echo "test-kotlin: missing $f" >&2; exit 1; }; done

jna="${CHATICO_JNA_JAR:-/usr/share/java/jna.jar}"
if [ ! -f "$jna" ]; then
  step "installing JNA (apt-get install libjna-java)"
  sudo=()
  if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get install -y -q libjna-java >/dev/null 2>&1 \
    || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q libjna-java >/dev/null; }
  [ -f "$jna" ] || { echo "test-kotlin: $jna is still missing after installing libjna-java" >&2; exit 1; }
fi

# ---- the library, the generated sources, the server ----
bash bindings/ffi/generate.sh "$out"
cargo build -p chatico-server
server="$target_dir/debug/chatico-server"
libdir="$target_dir/debug"
[ -f "$libdir/libchatico_ffi.so" ] || [ -f "$libdir/libchatico_ffi.dylib" ] || { echo "test-kotlin: no libchatico_ffi in $libdir" >&2; exit 1; }

# hash FILES... : one digest of the given files' names and contents, the compiler version
# and the classpath jars.
hash_of() {
  { echo "$kotlin_version"; sha256sum "$jna" | cut -d' ' -f1
    for f in "$@"; do echo "$f"; sha256sum < "$f"; done; } | sha256sum | cut -c1-16
}
# compile JAR CLASSPATH SOURCES...: kotlinc into a temporary jar, renamed when complete.
compile() {
  local jar="$1" cp="$2"; shift 2
  local t; t=$(date +%s)
  mkdir -p "$(dirname "$jar")"
  "$kotlinc" -nowarn -jvm-target 17 -cp "$cp" -d "$jar.tmp.jar" "$@"
  mv "$jar.tmp.jar" "$jar"
  echo "   ($(elapsed "$t"))"
}

mapfile -t gen_sources < <(cd "$out/kotlin" && find . -name '*.kt' | sort)
[ "${#gen_sources[@]}" -gt 0 ] || { echo "test-kotlin: no generated Kotlin in $out/kotlin" >&2; exit 1; }
bindings_hash="$(cd "$out/kotlin" && hash_of "${gen_sources[@]}")"
bindings_jar="$cache/jars/chatico-ffi-bindings-$bindings_hash.jar"
if [ -f "$bindings_jar" ]; then
  step "generated Kotlin bindings: compiled earlier ($bindings_jar)"
else
  step "compiling the generated Kotlin bindings (${#gen_sources[@]} files) into $bindings_jar"
  (cd "$out/kotlin" && compile "$bindings_jar" "$jna:$coroutines" "${gen_sources[@]}")
fi

test_src="bindings/ffi/tests/kotlin/ChatFfiTest.kt"
test_jar="$cache/jars/chatico-ffi-test-$(hash_of "$test_src")-$bindings_hash.jar"
if [ -f "$test_jar" ]; then
  step "Kotlin test program: compiled earlier ($test_jar)"
else
  step "compiling the Kotlin test program into $test_jar"
  compile "$test_jar" "$bindings_jar:$jna:$coroutines" "$test_src"
fi
# Jars of sources that have changed since are not used again.
find "$cache/jars" -name '*.jar' ! -path "$bindings_jar" ! -path "$test_jar" -delete

step "running the Kotlin tests against chatico-server"
java -version 2>&1 | head -1
# JNA finds libchatico_ffi (the name the generated code asks for) in jna.library.path.
CHATICO_SERVER_BIN="$server" java -Djna.library.path="$libdir" \
  -cp "$test_jar:$bindings_jar:$stdlib:$coroutines:$jna" chatico.ffitest.ChatFfiTestKt
