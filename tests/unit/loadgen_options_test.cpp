// lps-loadgen's command line: the --header option that lets direct mode reach another gateway
// (tools/gateway_compare.sh sends Portkey's routing headers with it), and --stream.

#include "tools/loadgen/options.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <vector>

namespace {

lps::loadgen::options parse(std::vector<const char*> args) {
  args.insert(args.begin(), "lps-loadgen");
  auto opt = lps::loadgen::parse_options(int(args.size()), const_cast<char**>(args.data()));
  REQUIRE(opt.has_value());
  return *opt;
}

} // namespace

TEST_CASE("headers are kept in order with the spaces after the colon dropped") {
  auto opt = parse({"--mode=direct", "--header=x-portkey-provider: openai",
                    "--header=x-portkey-custom-host:http://127.0.0.1:9/v1"});
  REQUIRE(opt.headers.size() == 2);
  CHECK(opt.headers[0].first == "x-portkey-provider");
  CHECK(opt.headers[0].second == "openai");
  CHECK(opt.headers[1].first == "x-portkey-custom-host");
  CHECK(opt.headers[1].second == "http://127.0.0.1:9/v1");
}

TEST_CASE("no header unless asked for") {
  CHECK(parse({"--mode=direct"}).headers.empty());
}

TEST_CASE("a header without a name or colon, or with a line break, is refused") {
  for (const char* bad :
       {"--header=novalue", "--header=: x", "--header=a b: c", "--header=x-a: b\r\nx-evil: 1"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse({bad}), std::invalid_argument);
  }
}

TEST_CASE("direct mode streams its calls with --stream=true") {
  CHECK_FALSE(parse({"--mode=direct"}).stream);
  CHECK(parse({"--mode=direct", "--stream=true"}).stream);
  CHECK_FALSE(parse({"--mode=direct", "--stream=false"}).stream);
  CHECK_THROWS_AS(parse({"--stream=yes"}), std::invalid_argument);
}
