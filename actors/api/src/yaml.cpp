#include "deckhand/api/yaml.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <regex>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace deckhand::api {

namespace {

using nlohmann::json;

/// Deeper documents than this are rejected: yaml-cpp and our conversion both
/// recurse, and no Kubernetes object comes close.
constexpr int max_depth = 128;

bool is_null_scalar(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

/// YAML 1.1 booleans as Kubernetes' YAML reader (go-yaml v2) knows them.
std::optional<bool> bool_scalar(const std::string& s) {
  static const char* yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  for (auto* y : yes)
    if (s == y)
      return true;
  for (auto* n : no)
    if (s == n)
      return false;
  return std::nullopt;
}

std::optional<json> number_scalar(const std::string& s) {
  static const std::regex int_re{R"([-+]?(0|[1-9][0-9_]*))"};
  static const std::regex hex_re{R"(0x[0-9a-fA-F_]+)"};
  static const std::regex float_re{R"([-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?)"};
  std::string digits;
  for (char c : s)
    if (c != '_')
      digits += c;
  if (std::regex_match(s, int_re)) {
    const char* first = digits.data() + (digits[0] == '+' ? 1 : 0);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(first, digits.data() + digits.size(), v);
    if (ec == std::errc{} && p == digits.data() + digits.size())
      return json(v);
    uint64_t u = 0;
    auto [p2, ec2] = std::from_chars(first, digits.data() + digits.size(), u);
    if (ec2 == std::errc{} && p2 == digits.data() + digits.size())
      return json(u);
    return json(std::strtod(digits.c_str(), nullptr));
  }
  if (std::regex_match(s, hex_re)) {
    uint64_t u = 0;
    auto [p, ec] = std::from_chars(digits.data() + 2, digits.data() + digits.size(), u, 16);
    if (ec == std::errc{} && p == digits.data() + digits.size())
      return u <= static_cast<uint64_t>(INT64_MAX) ? json(static_cast<int64_t>(u)) : json(u);
    return std::nullopt;
  }
  if (std::regex_match(s, float_re)) {
    double d = std::strtod(digits.c_str(), nullptr);
    if (std::isfinite(d))
      return json(d);
  }
  return std::nullopt;
}

json scalar_to_json(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  const std::string& tag = node.Tag();
  // Quoted scalars carry the non-specific tag "!": always strings.
  if (tag == "!" || tag == "tag:yaml.org,2002:str")
    return s;
  if (tag == "tag:yaml.org,2002:null")
    return nullptr;
  if (tag == "tag:yaml.org,2002:bool")
    return bool_scalar(s).value_or(false);
  if (tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float") {
    if (auto n = number_scalar(s))
      return *n;
    return s;
  }
  if (is_null_scalar(s))
    return nullptr;
  if (auto b = bool_scalar(s))
    return *b;
  if (auto n = number_scalar(s))
    return *n;
  return s;
}

struct conversion_error {
  std::string message;
};

json node_to_json(const YAML::Node& node, int depth) {
  if (depth > max_depth)
    throw conversion_error{"document nested too deeply"};
  switch (node.Type()) {
  case YAML::NodeType::Undefined:
  case YAML::NodeType::Null: return nullptr;
  case YAML::NodeType::Scalar: return scalar_to_json(node);
  case YAML::NodeType::Sequence: {
    auto arr = json::array();
    for (const auto& item : node)
      arr.push_back(node_to_json(item, depth + 1));
    return arr;
  }
  case YAML::NodeType::Map: {
    auto obj = json::object();
    for (const auto& kv : node) {
      if (!kv.first.IsScalar())
        throw conversion_error{"mapping keys must be scalars"};
      auto key = kv.first.Scalar();
      if (is_null_scalar(key) && kv.first.Tag() != "!")
        key = "null";
      obj[key] = node_to_json(kv.second, depth + 1);
    }
    return obj;
  }
  }
  return nullptr;
}

bool looks_like_json(std::string_view text) {
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)))
      continue;
    return c == '{' || c == '[';
  }
  return false;
}

// -- YAML output ------------------------------------------------------------------

bool needs_quotes(const std::string& s) {
  if (s.empty() || is_null_scalar(s) || bool_scalar(s) || number_scalar(s))
    return true;
  // YAML 1.1 readers turn these into timestamps.
  static const std::regex timestamp_re{R"([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?)"};
  if (std::regex_match(s, timestamp_re))
    return true;
  if (s == "y" || s == "Y" || s == "n" || s == "N" || s == "=" || s == ".inf" || s == ".nan")
    return true;
  unsigned char first = static_cast<unsigned char>(s.front());
  if (std::isspace(first) || std::isspace(static_cast<unsigned char>(s.back())))
    return true;
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(static_cast<char>(first)) !=
      std::string_view::npos) {
    // `-x`, `?x`, `:x` are plain when not followed by a space, but quoting
    // them costs nothing and avoids every corner case.
    return true;
  }
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos || s.back() == ':')
    return true;
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return true;
  return false;
}

std::string yaml_scalar(const json& j) {
  if (j.is_null())
    return "null";
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    // JSON's double-quoted string syntax is valid YAML.
    return needs_quotes(s) ? json(s).dump() : s;
  }
  return j.dump();
}

bool is_empty_collection(const json& j) { return (j.is_object() || j.is_array()) && j.empty(); }

void emit(std::ostringstream& os, const json& j, int indent);

void emit_value_after_key(std::ostringstream& os, const json& v, int indent) {
  if (v.is_object() && !v.empty()) {
    os << "\n";
    emit(os, v, indent + 2);
  } else if (v.is_array() && !v.empty()) {
    os << "\n";
    emit(os, v, indent);
  } else if (is_empty_collection(v)) {
    os << " " << (v.is_object() ? "{}" : "[]") << "\n";
  } else {
    os << " " << yaml_scalar(v) << "\n";
  }
}

void emit(std::ostringstream& os, const json& j, int indent) {
  std::string pad(static_cast<std::size_t>(indent), ' ');
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      os << pad << yaml_scalar(json(it.key())) << ":";
      emit_value_after_key(os, it.value(), indent);
    }
  } else if (j.is_array()) {
    for (const auto& item : j) {
      os << pad << "-";
      if (item.is_object() && !item.empty()) {
        // The first key goes on the dash line, the rest line up under it.
        std::ostringstream inner;
        emit(inner, item, indent + 2);
        auto text = inner.str();
        os << " " << text.substr(static_cast<std::size_t>(indent) + 2);
      } else if (item.is_array() && !item.empty()) {
        os << "\n";
        emit(os, item, indent + 2);
      } else if (is_empty_collection(item)) {
        os << " " << (item.is_object() ? "{}" : "[]") << "\n";
      } else {
        os << " " << yaml_scalar(item) << "\n";
      }
    }
  } else {
    os << pad << yaml_scalar(j) << "\n";
  }
}

}  // namespace

result<std::vector<json>> parse_documents(std::string_view text, const std::string& source) {
  std::vector<json> docs;
  if (looks_like_json(text)) {
    // A JSON stream: one or more values back to back.
    std::string buf(text);
    std::size_t pos = 0;
    while (true) {
      while (pos < buf.size() && std::isspace(static_cast<unsigned char>(buf[pos])))
        ++pos;
      if (pos >= buf.size())
        break;
      try {
        std::size_t consumed = 0;
        auto sub = std::string_view(buf).substr(pos);
        // Parse the longest valid prefix by letting nlohmann report where it stopped.
        json doc;
        try {
          doc = json::parse(sub);
          consumed = sub.size();
        } catch (const json::parse_error& e) {
          if (e.byte == 0 || e.byte > sub.size())
            throw;
          auto head = sub.substr(0, e.byte - 1);
          doc = json::parse(head);
          consumed = head.size();
        }
        docs.push_back(std::move(doc));
        pos += consumed;
      } catch (const json::exception& e) {
        return error{errc::invalid, "error parsing " + source + ": " + e.what()};
      }
    }
    return docs;
  }
  try {
    auto nodes = YAML::LoadAll(std::string(text));
    for (const auto& node : nodes) {
      auto doc = node_to_json(node, 0);
      if (doc.is_null() || (doc.is_object() && doc.empty()))
        continue;
      docs.push_back(std::move(doc));
    }
  } catch (const YAML::Exception& e) {
    return error{errc::invalid, "error parsing " + source +
                                    ": error converting YAML to JSON: yaml: line " +
                                    std::to_string(e.mark.line + 1) + ": " + e.msg};
  } catch (const conversion_error& e) {
    return error{errc::invalid,
                 "error parsing " + source + ": error converting YAML to JSON: " + e.message};
  }
  return docs;
}

std::string to_yaml(const json& j) {
  if (is_empty_collection(j))
    return j.is_object() ? "{}\n" : "[]\n";
  std::ostringstream os;
  emit(os, j, 0);
  return os.str();
}

}  // namespace deckhand::api
