#include <string>

#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

namespace {

const char* const dns1123_label_msg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const char* const dns1123_subdomain_msg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* const dns1035_label_msg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const char* const label_value_msg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const char* const label_name_msg =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool is_label_shape(const std::string& s) {
  if (s.empty() || !lower_alnum(s.front()) || !lower_alnum(s.back()))
    return false;
  for (char c : s)
    if (!lower_alnum(c) && c != '-')
      return false;
  return true;
}

}  // namespace

std::string field_error::to_string() const {
  std::string s = field + ": " + type;
  if (!detail.empty())
    s += ": " + detail;
  return s;
}

std::string invalid_message(const std::string& kind, const std::string& name,
                            const field_errors& errs) {
  std::string s = kind + " " + quote(name) + " is invalid: ";
  if (errs.size() == 1)
    return s + errs[0].to_string();
  s += "[";
  for (std::size_t i = 0; i < errs.size(); ++i)
    s += (i ? ", " : "") + errs[i].to_string();
  return s + "]";
}

std::vector<std::string> check_dns1123_label(const std::string& s) {
  std::vector<std::string> out;
  if (s.size() > 63)
    out.push_back("must be no more than 63 characters");
  if (!is_label_shape(s))
    out.push_back(dns1123_label_msg);
  return out;
}

std::vector<std::string> check_dns1123_subdomain(const std::string& s) {
  std::vector<std::string> out;
  if (s.size() > 253)
    out.push_back("must be no more than 253 characters");
  bool ok = !s.empty();
  std::size_t start = 0;
  while (ok) {
    auto dot = s.find('.', start);
    ok =
        is_label_shape(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  if (!ok)
    out.push_back(dns1123_subdomain_msg);
  return out;
}

std::vector<std::string> check_dns1035_label(const std::string& s) {
  std::vector<std::string> out;
  if (s.size() > 63)
    out.push_back("must be no more than 63 characters");
  if (!is_label_shape(s) || !(s.front() >= 'a' && s.front() <= 'z'))
    out.push_back(dns1035_label_msg);
  return out;
}

void validate_object_meta(const json& obj, bool namespaced,
                          std::vector<std::string> (*name_check)(const std::string&),
                          field_errors& errs) {
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) {
    errs.push_back(required("metadata.name", "name or generateName is required"));
    return;
  }
  const json& md = obj["metadata"];
  if (!md.contains("name") || (md["name"].is_string() && md["name"].get<std::string>().empty()))
    errs.push_back(required("metadata.name", "name or generateName is required"));
  else
    check_name("metadata.name", md["name"], name_check, errs);
  if (namespaced) {
    if (!md.contains("namespace") || !md["namespace"].is_string() ||
        md["namespace"].get<std::string>().empty())
      errs.push_back(required("metadata.namespace"));
    else
      check_name("metadata.namespace", md["namespace"], check_dns1123_label, errs);
  }
  if (md.contains("labels"))
    validate_labels(md["labels"], "metadata.labels", errs);
  if (md.contains("annotations") && !md["annotations"].is_null()) {
    if (!md["annotations"].is_object())
      errs.push_back(
          invalid("metadata.annotations", md["annotations"], "must be a map of strings"));
    else
      for (const auto& [k, v] : md["annotations"].items())
        if (!v.is_string())
          errs.push_back(invalid("metadata.annotations[" + k + "]", v, "must be a string"));
  }
}

namespace detail {

void validate_labels(const json& labels, const std::string& path, field_errors& errs) {
  if (labels.is_null())
    return;
  if (!labels.is_object()) {
    errs.push_back(invalid(path, labels, "must be a map of strings"));
    return;
  }
  for (const auto& [k, v] : labels.items()) {
    std::string name = k;
    if (auto slash = k.find('/'); slash != std::string::npos) {
      std::string prefix = k.substr(0, slash);
      name = k.substr(slash + 1);
      for (const auto& m : check_dns1123_subdomain(prefix))
        errs.push_back(invalid(path, k, "prefix part " + m));
    }
    bool name_ok = !name.empty() && name.size() <= 63 && alnum(name.front()) && alnum(name.back());
    for (char c : name)
      name_ok = name_ok && (alnum(c) || c == '-' || c == '_' || c == '.');
    if (!name_ok)
      errs.push_back(invalid(path, k, label_name_msg));
    if (!v.is_string()) {
      errs.push_back(invalid(path + "[" + k + "]", v, "must be a string"));
      continue;
    }
    std::string s = v.get<std::string>();
    bool ok = s.size() <= 63 && (s.empty() || (alnum(s.front()) && alnum(s.back())));
    for (char c : s)
      ok = ok && (alnum(c) || c == '-' || c == '_' || c == '.');
    if (!ok)
      errs.push_back(invalid(path, s, label_value_msg));
  }
}

}  // namespace detail

}  // namespace deckhand::api
