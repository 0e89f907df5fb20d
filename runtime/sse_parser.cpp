#include "runtime/sse_parser.hpp"

#include <algorithm>
#include <charconv>

namespace lps {

namespace {

constexpr std::string_view bom = "\xEF\xBB\xBF";

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

} // namespace

void sse_parser::feed(std::string_view bytes, std::vector<sse_event>& out) {
  // The byte order mark may itself arrive split; it counts only at the very start.
  while (!started_ && !bytes.empty() && !failed()) {
    if (bytes.front() != bom[bom_seen_]) {
      line_.append(bom.substr(0, bom_seen_)); // not a BOM after all: those bytes are text
      started_ = true;
      break;
    }
    bytes.remove_prefix(1);
    if (++bom_seen_ == bom.size())
      started_ = true;
  }
  size_t i = 0;
  while (i < bytes.size() && !failed()) {
    if (after_cr_) {
      after_cr_ = false;
      if (bytes[i] == '\n') { // the LF of a CRLF split between two pieces
        ++i;
        continue;
      }
    }
    auto end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(i));
      if (line_.size() > max_event_bytes_)
        error_ = "an event stream line exceeds " + std::to_string(max_event_bytes_) + " bytes";
      return;
    }
    line_.append(bytes.substr(i, end - i));
    if (bytes[end] == '\r') {
      if (end + 1 < bytes.size()) {
        if (bytes[end + 1] == '\n')
          ++end;
      } else {
        after_cr_ = true;
      }
    }
    i = end + 1;
    take_line(out);
  }
}

void sse_parser::take_line(std::vector<sse_event>& out) {
  std::string_view line = line_;
  if (line.empty())
    dispatch(out);
  else if (line.front() != ':') // ':' starts a comment (keep-alives: ": OPENROUTER PROCESSING")
    take_field(line);
  line_.clear();
}

void sse_parser::take_field(std::string_view line) {
  auto colon = line.find(':');
  if (colon == std::string_view::npos)
    return take_field(line, {});
  auto value = line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  take_field(line.substr(0, colon), value);
}

void sse_parser::take_field(std::string_view name, std::string_view value) {
  if (name == "event") {
    event_type_.assign(value);
  } else if (name == "data") {
    data_.append(value);
    data_.push_back('\n');
    has_data_ = true;
    if (data_.size() > max_event_bytes_)
      error_ = "an event's data exceeds " + std::to_string(max_event_bytes_) + " bytes";
  } else if (name == "id") {
    if (value.find('\0') == std::string_view::npos)
      last_id_.assign(value);
  } else if (name == "retry") {
    unsigned long long ms = 0;
    if (all_digits(value)
        && std::from_chars(value.data(), value.data() + value.size(), ms).ec == std::errc{})
      retry_ = ms;
  }
  // Any other field is ignored, as the standard says.
}

void sse_parser::dispatch(std::vector<sse_event>& out) {
  // A blank line without data only resets the event type (the standard dispatches nothing).
  if (has_data_) {
    sse_event e;
    if (!event_type_.empty())
      e.event = std::move(event_type_);
    data_.pop_back(); // the newline after the last data line
    e.data = std::move(data_);
    e.id = last_id_;
    out.push_back(std::move(e));
  }
  data_.clear();
  has_data_ = false;
  event_type_.clear();
}

} // namespace lps
