#pragma once

// What build this is: the project version and the git commit CMake configured (filled in by
// app/build_info.cpp.in at configure time; "unknown" outside a git checkout).

namespace lps {

const char* build_version();
const char* build_revision();

} // namespace lps
