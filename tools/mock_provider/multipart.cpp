#include "tools/mock_provider/multipart.hpp"

#include <cctype>

namespace lps::mock_batch {

namespace {

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size())
    return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i]))
        != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

std::string_view unquote(std::string_view s) {
  s = trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"')
    s = s.substr(1, s.size() - 2);
  return s;
}

/// A `;`-separated header parameter (boundary, name, filename), case-insensitive name.
std::optional<std::string> header_param(std::string_view value, std::string_view name) {
  while (!value.empty()) {
    auto semi = value.find(';');
    auto piece = trim(value.substr(0, semi));
    value = semi == std::string_view::npos ? std::string_view{} : value.substr(semi + 1);
    auto eq = piece.find('=');
    if (eq == std::string_view::npos)
      continue;
    auto key = trim(piece.substr(0, eq));
    if (key.size() == name.size() && starts_with_ci(key, name))
      return std::string(unquote(piece.substr(eq + 1)));
  }
  return std::nullopt;
}

} // namespace

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<std::vector<form_part>> parse_multipart(std::string_view content_type,
                                                      std::string_view body) {
  if (!starts_with_ci(trim(content_type), "multipart/form-data"))
    return std::nullopt;
  auto boundary = header_param(content_type, "boundary");
  if (!boundary || boundary->empty())
    return std::nullopt;
  const std::string delimiter = "--" + *boundary;
  const std::string next_delimiter = "\r\n" + delimiter;
  size_t pos = body.find(delimiter);
  if (pos == std::string_view::npos)
    return std::nullopt;
  pos += delimiter.size();
  std::vector<form_part> parts;
  for (;;) {
    if (body.substr(pos, 2) == "--")
      return parts;
    if (body.substr(pos, 2) != "\r\n")
      return std::nullopt;
    pos += 2;
    auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos)
      return std::nullopt;
    auto headers = body.substr(pos, head_end - pos);
    auto data_start = head_end + 4;
    auto end = body.find(next_delimiter, data_start);
    if (end == std::string_view::npos)
      return std::nullopt;
    form_part part;
    part.data = body.substr(data_start, end - data_start);
    while (!headers.empty()) {
      auto eol = headers.find("\r\n");
      auto line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      constexpr std::string_view cd = "content-disposition:";
      if (!starts_with_ci(line, cd))
        continue;
      auto value = line.substr(cd.size());
      part.name = header_param(value, "name").value_or("");
      part.filename = header_param(value, "filename");
    }
    parts.push_back(std::move(part));
    pos = end + next_delimiter.size();
  }
}

} // namespace lps::mock_batch
