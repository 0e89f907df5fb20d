#!/usr/bin/env bash
# Builds the libFuzzer target for the request parser (tests/fuzz/request_parser_fuzz.cpp) with
# clang and runs it for a while. Usage: tools/fuzz.sh [seconds]   (default 60)
#
# Separate from the CMake build on purpose: the main build uses g++, libFuzzer needs clang, and
# four translation units do not need a configure step. Objects are rebuilt only when a source,
# a header it includes or the flags change, so a rerun skips the build.
#
# Exit status: 0 when the run ends without a finding; libFuzzer's own non-zero status when it
# finds a crash, leak, timeout or violated invariant (the input is written to
# build-fuzz/artifacts/ and its path printed). See docs/fuzzing.md.
#
# Environment: CXX (default clang++), FUZZ_ARGS (extra libFuzzer flags, e.g. "-seed=1"),
# FUZZ_BOOST_JSON (source, the default, or shared; see below).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "usage: tools/fuzz.sh [seconds]   (a positive whole number, default 60)" >&2
  exit 2
fi

out=build-fuzz
binary="$out/request_parser_fuzz"
work_corpus="$out/corpus"
artifacts="$out/artifacts"
mkdir -p "$out/obj" "$work_corpus" "$artifacts"

cxx="${CXX:-clang++}"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(ccache)
fi

# shellcheck disable=SC2054 # the commas belong to the flag
sanitize=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
cxxflags=(-std=c++20 -O1 -g -fno-omit-frame-pointer "${sanitize[@]}" -I.
  -DCAF_ENABLE_TYPE_ID_CHECKS -Wall -Wextra)
# CAF is only needed for its headers here (caf::timestamp, type_name): no -lcaf_core.
# simdjson (the gateway's request check) is Debian's shared library, not instrumented.
libs=(-lcrypto -lsimdjson)
sources=(tests/fuzz/request_parser_fuzz.cpp runtime/json_utf8.cpp runtime/json_writer.cpp
  runtime/json_scanner.cpp runtime/json_request_parser.cpp runtime/json_renderers.cpp
  runtime/url.cpp runtime/ids.cpp messages/comparison.cpp
  runtime/gateway_request.cpp runtime/gateway_check.cpp runtime/gateway_common.cpp
  runtime/gateway_anthropic.cpp
  runtime/gateway_gemini.cpp actors/providers/wire_common.cpp actors/providers/retry_policy.cpp
  actors/providers/rate_limiter.cpp
  runtime/sse_parser.cpp runtime/stream_translate_chunk.cpp runtime/stream_translate_openai.cpp
  runtime/stream_translate_anthropic.cpp runtime/stream_translate_gemini.cpp)

# Boost.JSON: by default compiled from its own sources (the same 1.81 headers the service
# uses) with the sanitizers and coverage on. Then ASan sees the parser's accesses to the stack
# buffers json_request_parser.cpp lends it, and libFuzzer is guided by the parser's branches (escapes,
# numbers, UTF-8), not only by ours. FUZZ_BOOST_JSON=shared links Debian's uninstrumented
# libboost_json.so instead, with the definitions the CMake build uses.
case "${FUZZ_BOOST_JSON:-source}" in
source)
  boost_src="$out/boost_json_src.cpp"
  boost_line='#include <boost/json/src.hpp> // instrumented Boost.JSON, see tools/fuzz.sh'
  # Rewritten only when different, so its timestamp does not force a rebuild.
  if [[ ! -f "$boost_src" || "$(cat "$boost_src")" != "$boost_line" ]]; then
    echo "$boost_line" >"$boost_src"
  fi
  sources+=("$boost_src")
  ;;
shared)
  cxxflags+=(-DBOOST_JSON_DYN_LINK -DBOOST_JSON_NO_LIB)
  libs+=(-lboost_json)
  ;;
*)
  echo "fuzz: FUZZ_BOOST_JSON must be source or shared" >&2
  exit 2
  ;;
esac

# A change of compiler or flags invalidates every object.
stamp="$out/flags"
flags_now="$("$cxx" --version | head -n1) ${cxxflags[*]} ${libs[*]} ${sources[*]}"
if [[ ! -f "$stamp" ]] || [[ "$(cat "$stamp")" != "$flags_now" ]]; then
  rm -f "$out"/obj/*.o "$out"/obj/*.d
  printf '%s' "$flags_now" >"$stamp"
fi

# True when `object` is missing or older than anything in its dependency file (-MMD output).
stale() {
  local object="$1" depfile="${1%.o}.d" dep
  [[ -f "$object" && -f "$depfile" ]] || return 0
  # shellcheck disable=SC2013 # a depfile lists paths separated by blanks, not by lines
  for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$depfile"); do
    if [[ "$dep" -nt "$object" ]]; then
      return 0
    fi
  done
  return 1
}

objects=()
relink=false
[[ -f "$binary" ]] || relink=true
for source in "${sources[@]}"; do
  object="$out/obj/$(echo "${source%.cpp}" | tr / _).o"
  objects+=("$object")
  if stale "$object"; then
    echo "fuzz: compiling $source"
    "${launcher[@]}" "$cxx" "${cxxflags[@]}" -MMD -MF "${object%.o}.d" -c "$source" -o "$object"
    relink=true
  fi
  if [[ "$object" -nt "$binary" ]]; then
    relink=true
  fi
done
if $relink; then
  echo "fuzz: linking $binary"
  "$cxx" "${sanitize[@]}" "${objects[@]}" "${libs[@]}" -o "$binary"
fi

# The checked-in seeds (and past crash reproducers) are copied, never fuzzed in place:
# libFuzzer writes new inputs into its first corpus directory. The work corpus keeps what
# earlier runs found, so longer runs build on each other.
cp -f tests/fuzz/corpus/* "$work_corpus"/
if compgen -G "tests/fuzz/regressions/*" >/dev/null; then
  cp -f tests/fuzz/regressions/* "$work_corpus"/
fi

log="$out/fuzz.log"
marker="$out/.run-start"
touch "$marker"
echo "fuzz: running $binary for ${seconds}s (log: $log)"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
status=0
# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
"$binary" -max_total_time="$seconds" -dict=tests/fuzz/fuzz.dict -max_len=65536 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
  "$work_corpus" 2>&1 | tee "$log" || status=$?

# The last status line carries the coverage figures; the final stats the execution counts.
summary="$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)"
execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
echo "fuzz: summary: ${execs:-?} executions, ${rate:-?} exec/s; last status: ${summary:-none}"

if ((status != 0)); then
  echo "fuzz: FAILED (libFuzzer exit status $status); reproducer(s):" >&2
  find "$artifacts" -type f -newer "$marker" -printf '  %p\n' >&2
  echo "fuzz: replay one with: $binary <file>" >&2
  exit "$status"
fi
echo "fuzz: no findings"
