#pragma once

// The PostgreSQL schema of lps as versioned migrations, and the runner that applies them at
// start: in one transaction under an advisory lock, so nodes starting at once apply each
// migration exactly once and never see half a schema. A database whose schema is newer than
// the binary is refused, never written.

#include "runtime/postgres.hpp"

#include <string>
#include <vector>

namespace lps::pg {

struct migration {
  int version = 0;
  std::string description;
  std::string sql;
};

/// Every migration, oldest first; versions count up from 1 without gaps.
const std::vector<migration>& migrations();

/// The newest schema version this binary knows.
int binary_schema_version();

struct schema_report {
  /// The database's version before (0: no lps schema yet) and after the call.
  int before = 0;
  int after = 0;
  /// Empty when fine; else what is wrong (a newer schema, a failed statement).
  std::string error;
};

/// Reads the database's schema version without changing anything (`lps migrate --check`).
schema_report read_schema_version(connection& db);

/// Applies every migration newer than the database's, all in one transaction holding a
/// transaction-level advisory lock; a failure rolls everything back. `up_to` stops at that
/// version (tests of a migration start from the schema before it); lps migrates to its own.
schema_report migrate(connection& db, int up_to = binary_schema_version());

} // namespace lps::pg
