# Every external dependency comes from Debian packages installed by tools/setup.sh.
find_package(Threads REQUIRED)

# Debian's CAF 0.17.6 ships no CMake config and no pkg-config file: build imported targets.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
find_library(CAF_CORE_LIBRARY caf_core REQUIRED)
find_library(CAF_IO_LIBRARY caf_io REQUIRED)
add_library(CAF::core SHARED IMPORTED)
set_target_properties(CAF::core PROPERTIES IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES Threads::Threads)
add_library(CAF::io SHARED IMPORTED)
set_target_properties(CAF::io PROPERTIES IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
  INTERFACE_LINK_LIBRARIES CAF::core)
# CAF's TLS transport for the middleman (mutual TLS between cluster nodes), Debian's
# libcaf-openssl0.17 (pulled in by libcaf-dev).
find_library(CAF_OPENSSL_LIBRARY caf_openssl REQUIRED)
add_library(CAF::openssl SHARED IMPORTED)
set_target_properties(CAF::openssl PROPERTIES IMPORTED_LOCATION "${CAF_OPENSSL_LIBRARY}"
  INTERFACE_LINK_LIBRARIES CAF::io)

# "1.81 EXACT" fails because the package says 1.81.0.
find_package(Boost 1.81.0 EXACT REQUIRED CONFIG COMPONENTS json)
find_package(spdlog 1.10 REQUIRED CONFIG)
find_package(SQLite3 REQUIRED)
find_package(PostgreSQL 15 REQUIRED) # libpq only (libpq-dev), for the PostgreSQL store
find_package(OpenSSL REQUIRED)
find_package(Catch2 2 REQUIRED CONFIG)
find_package(CLI11 2 REQUIRED CONFIG) # lpsctl's command line
find_package(simdjson 3 REQUIRED CONFIG) # the gateway's request check (runtime/gateway_check.cpp)

# jemalloc: lps allocates many short-lived 6 KB strings across threads; glibc malloc spent
# ~18 % of the CPU on them (perf), jemalloc cuts the CPU per request by about a quarter.
find_library(JEMALLOC_LIBRARY NAMES jemalloc REQUIRED)
