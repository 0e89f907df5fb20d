# Renders the sample exposition with the real registry and lints it with promtool.
# Usage: cmake -DRENDER=<path to metrics_registry_test> [-DPROMTOOL=<path>] -P promtool_check.cmake

if(NOT RENDER)
  message(FATAL_ERROR "promtool_check: pass -DRENDER=<path to metrics_registry_test>")
endif()
if(NOT PROMTOOL)
  find_program(PROMTOOL promtool PATHS /usr/bin)
endif()
if(NOT PROMTOOL)
  message(FATAL_ERROR "promtool_check: promtool not found")
endif()

# A per-run file name so parallel ctest runs do not share the exposition.
string(RANDOM LENGTH 12 run_id)
if(DEFINED ENV{TMPDIR} AND IS_DIRECTORY "$ENV{TMPDIR}")
  set(tmp_dir "$ENV{TMPDIR}")
else()
  set(tmp_dir "/tmp")
endif()
set(out_file "${tmp_dir}/lps-metrics-${run_id}.prom")

execute_process(
  COMMAND ${CMAKE_COMMAND} -E env LPS_METRICS_OUT=${out_file} ${RENDER} "[.render]"
  RESULT_VARIABLE render_rc
  OUTPUT_VARIABLE render_out
  ERROR_VARIABLE render_out)
if(NOT render_rc EQUAL 0 OR NOT EXISTS "${out_file}")
  file(REMOVE "${out_file}")
  message(FATAL_ERROR "promtool_check: rendering failed (${render_rc}):\n${render_out}")
endif()

file(SIZE "${out_file}" out_size)
if(out_size EQUAL 0)
  file(REMOVE "${out_file}")
  message(FATAL_ERROR "promtool_check: rendered exposition is empty")
endif()

execute_process(
  COMMAND ${PROMTOOL} check metrics
  INPUT_FILE "${out_file}"
  RESULT_VARIABLE check_rc
  OUTPUT_VARIABLE check_out
  ERROR_VARIABLE check_out)
file(REMOVE "${out_file}")

# promtool exits 0 on lint-only findings in some versions: any output counts as a failure.
string(STRIP "${check_out}" check_out)
message(STATUS "promtool check metrics (exit ${check_rc}, ${out_size} bytes): "
               "${check_out}")
if(NOT check_rc EQUAL 0 OR NOT check_out STREQUAL "")
  message(FATAL_ERROR "promtool_check: promtool reported problems:\n${check_out}")
endif()
