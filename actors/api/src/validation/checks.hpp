#pragma once

/// Building blocks shared by the per-kind defaulting and validation files:
/// JSON access that tolerates wrong shapes, and field errors worded as
/// Kubernetes words them.

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/api/validation.hpp"

namespace deckhand::api::detail {

using nlohmann::json;

bool alnum(char c);

/// `s` as a JSON string literal.
std::string quote(const std::string& s);

field_error required(std::string field, std::string detail = {});
field_error invalid(std::string field, const json& value, const std::string& msg);
field_error unsupported(std::string field, const std::string& value,
                        const std::vector<std::string>& supported);

/// The string at `key` of `obj`, if it is a string.
std::optional<std::string> str_at(const json& obj, const char* key);
std::string str_or(const json& obj, const char* key, const std::string& dflt = {});

/// Sets obj[key] = value unless present (and not null).
void set_default(json& obj, const char* key, const json& value);

void check_one_of(const json& obj, const char* key, const std::string& path,
                  const std::vector<std::string>& supported, field_errors& errs);
void check_int_range(const json& obj, const char* key, const std::string& path, long long lo,
                     long long hi, bool is_required, field_errors& errs);
void check_name(const std::string& path, const json& v,
                std::vector<std::string> (*check)(const std::string&), field_errors& errs);
void validate_labels(const json& labels, const std::string& path, field_errors& errs);

/// One port of an Endpoints subset or an EndpointSlice; `names` collects the
/// port names seen so far for the duplicate check.
void validate_endpoint_port(const json& p, const std::string& path, bool name_required,
                            std::set<std::string>& names, bool port_required, field_errors& errs);

bool valid_ipv4(const std::string& s);
bool valid_ipv6(const std::string& s);

/// `obj[key]` if present, else null (a const json has no operator[] for a
/// missing key).
const json& at_or_null(const json& obj, const char* key);

}  // namespace deckhand::api::detail
