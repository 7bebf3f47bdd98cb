#include "validation/checks.hpp"

#include <arpa/inet.h>

#include <cctype>

namespace deckhand::api::detail {

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string quote(const std::string& s) { return json(s).dump(); }

field_error required(std::string field, std::string detail) {
  return {"Required value", std::move(field), std::move(detail)};
}

field_error invalid(std::string field, const json& value, const std::string& msg) {
  return {"Invalid value", std::move(field), value.dump() + ": " + msg};
}

field_error unsupported(std::string field, const std::string& value,
                        const std::vector<std::string>& supported) {
  std::string d = quote(value) + ": supported values: ";
  for (std::size_t i = 0; i < supported.size(); ++i)
    d += (i ? ", " : "") + quote(supported[i]);
  return {"Unsupported value", std::move(field), d};
}

std::optional<std::string> str_at(const json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_string())
    return obj[key].get<std::string>();
  return std::nullopt;
}

std::string str_or(const json& obj, const char* key, const std::string& dflt) {
  return str_at(obj, key).value_or(dflt);
}

void set_default(json& obj, const char* key, const json& value) {
  if (!obj.contains(key) || obj[key].is_null())
    obj[key] = value;
}

void check_one_of(const json& obj, const char* key, const std::string& path,
                  const std::vector<std::string>& supported, field_errors& errs) {
  if (!obj.contains(key))
    return;
  const json& v = obj[key];
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  for (const auto& ok : supported)
    if (s == ok)
      return;
  errs.push_back(unsupported(path, s, supported));
}

void check_int_range(const json& obj, const char* key, const std::string& path, long long lo,
                     long long hi, bool is_required, field_errors& errs) {
  if (!obj.contains(key) || obj[key].is_null()) {
    if (is_required)
      errs.push_back(required(path));
    return;
  }
  const json& v = obj[key];
  if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi)
    errs.push_back(invalid(path, v,
                           "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                               ", inclusive"));
}

void check_name(const std::string& path, const json& v,
                std::vector<std::string> (*check)(const std::string&), field_errors& errs) {
  if (!v.is_string()) {
    errs.push_back(invalid(path, v, "must be a string"));
    return;
  }
  for (const auto& m : check(v.get<std::string>()))
    errs.push_back(invalid(path, v, m));
}

bool valid_ipv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool valid_ipv6(const std::string& s) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

void validate_endpoint_port(const json& p, const std::string& path, bool name_required,
                            std::set<std::string>& names, bool port_required, field_errors& errs) {
  if (!p.is_object()) {
    errs.push_back(invalid(path, p, "must be an object"));
    return;
  }
  check_one_of(p, "protocol", path + ".protocol", {"SCTP", "TCP", "UDP"}, errs);
  check_int_range(p, "port", path + ".port", 1, 65535, port_required, errs);
  auto name = str_at(p, "name");
  if (name_required && (!name || name->empty())) {
    errs.push_back(required(path + ".name"));
  } else if (name && !name->empty()) {
    check_name(path + ".name", *name, check_dns1123_label, errs);
    if (!names.insert(*name).second)
      errs.push_back({"Duplicate value", path + ".name", quote(*name)});
  }
}

const json& at_or_null(const json& obj, const char* key) {
  static const json null_value;
  if (!obj.is_object())
    return null_value;
  auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

}  // namespace deckhand::api::detail
