#include "app/config_route.hpp"

#include "runtime/config_body.hpp"

namespace lps {

http_response config_response(const config& cfg) {
  // Never cached: the body names the deployment's settings (secrets masked all the same).
  return {
      200, render_config(shown_settings(cfg)), "application/json", {{"Cache-Control", "no-store"}}};
}

} // namespace lps
