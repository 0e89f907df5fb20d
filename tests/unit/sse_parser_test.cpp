#include "runtime/sse_parser.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

using lps::sse_event;
using lps::sse_parser;

namespace {

std::vector<sse_event> parse_whole(std::string_view text) {
  sse_parser p;
  std::vector<sse_event> out;
  p.feed(text, out);
  return out;
}

/// Feeds `text` in random pieces (1 byte up to `max_piece`), seeded for reproducibility.
std::vector<sse_event> parse_chunked(std::string_view text, uint64_t seed, size_t max_piece) {
  std::mt19937_64 rng{seed};
  std::uniform_int_distribution<size_t> piece(1, max_piece);
  sse_parser p;
  std::vector<sse_event> out;
  size_t at = 0;
  while (at < text.size()) {
    auto n = std::min(piece(rng), text.size() - at);
    p.feed(text.substr(at, n), out);
    at += n;
  }
  return out;
}

sse_event ev(std::string event, std::string data, std::string id = {}) {
  return sse_event{std::move(event), std::move(data), std::move(id)};
}

} // namespace

TEST_CASE("events are separated by blank lines and carry their event name", "[sse]") {
  auto out = parse_whole("event: message_start\ndata: {\"a\":1}\n\ndata: plain\n\n");
  REQUIRE(out.size() == 2);
  CHECK(out[0] == ev("message_start", "{\"a\":1}"));
  CHECK(out[1] == ev("message", "plain"));
}

TEST_CASE("several data lines join with a newline, and one leading space is stripped", "[sse]") {
  auto out = parse_whole("data:first\ndata:  second\ndata\ndata: \n\n");
  REQUIRE(out.size() == 1);
  CHECK(out[0].data == "first\n second\n\n");
}

TEST_CASE("comments, unknown fields and blank lines without data dispatch nothing", "[sse]") {
  auto out = parse_whole(": OPENROUTER PROCESSING\n\nevent: ping\n\nfoo: bar\n\n:\n\ndata: x\n\n");
  REQUIRE(out.size() == 1);
  // The event name of the data-less block does not leak into the next event.
  CHECK(out[0] == ev("message", "x"));
}

TEST_CASE("CRLF, CR and LF line ends are all accepted", "[sse]") {
  auto crlf = parse_whole("data: a\r\n\r\ndata: b\r\rdata: c\n\n");
  REQUIRE(crlf.size() == 3);
  CHECK(crlf[0].data == "a");
  CHECK(crlf[1].data == "b");
  CHECK(crlf[2].data == "c");
}

TEST_CASE("a CRLF split between two pieces is one line end, not two", "[sse]") {
  sse_parser p;
  std::vector<sse_event> out;
  p.feed("data: a\r", out);
  p.feed("\ndata: b\r", out);
  p.feed("\n\r", out);
  p.feed("\n", out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].data == "a\nb");
}

TEST_CASE("a final event without a blank line is dropped", "[sse]") {
  sse_parser p;
  std::vector<sse_event> out;
  p.feed("data: done\n\ndata: cut off\n", out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].data == "done");
  CHECK(p.pending());
}

TEST_CASE("the id persists across events and retry is kept when all digits", "[sse]") {
  sse_parser p;
  std::vector<sse_event> out;
  p.feed("id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nretry: soon\nid\ndata: c\n\n", out);
  REQUIRE(out.size() == 3);
  CHECK(out[0].id == "7");
  CHECK(out[1].id == "7");
  CHECK(out[2].id.empty());
  REQUIRE(p.retry());
  CHECK(*p.retry() == 1500);
}

TEST_CASE("a leading byte order mark is skipped, even split, and only at the start", "[sse]") {
  sse_parser p;
  std::vector<sse_event> out;
  p.feed("\xEF", out);
  p.feed("\xBB\xBF"
         "data: a\n\n\xEF\xBB\xBF"
         "data: b\n\n",
         out);
  REQUIRE(out.size() == 1); // the second BOM makes its line a field named "\xEF\xBB\xBFdata"
  CHECK(out[0].data == "a");
  auto not_bom = parse_whole("\xEF"
                             "data: a\n\n");
  CHECK(not_bom.empty()); // "\xEF" + "data" is an unknown field
}

TEST_CASE("any chunking of a stream gives the same events", "[sse]") {
  std::string text = "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n"
                     ": keep-alive\n\n"
                     "event: ping\ndata: {\"type\": \"ping\"}\n\n"
                     "data: line one\ndata: line two\r\n\r\n"
                     "id: 42\rdata: {\"x\":\"\xC3\xA9\"}\r\r"
                     "data: [DONE]\n\n";
  auto whole = parse_whole(text);
  REQUIRE(whole.size() == 5);
  CHECK(whole[3] == ev("message", "{\"x\":\"\xC3\xA9\"}", "42"));
  CHECK(whole[4].data == "[DONE]");
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    INFO("seed " << seed);
    CHECK(parse_chunked(text, seed, seed % 7 + 1) == whole);
  }
}

TEST_CASE("a line longer than the limit fails the stream instead of growing", "[sse]") {
  sse_parser p{64};
  std::vector<sse_event> out;
  p.feed("data: ok\n\n", out);
  p.feed("data: " + std::string(100, 'x'), out);
  CHECK(p.failed());
  CHECK(p.error().find("64 bytes") != std::string::npos);
  p.feed("\n\ndata: later\n\n", out);
  CHECK(out.size() == 1);
}

TEST_CASE("data lines adding up beyond the limit fail the stream", "[sse]") {
  sse_parser p{64};
  std::vector<sse_event> out;
  for (int i = 0; i < 10; ++i)
    p.feed("data: 0123456789\n", out);
  CHECK(p.failed());
  CHECK(out.empty());
}
