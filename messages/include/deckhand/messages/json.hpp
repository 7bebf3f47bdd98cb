#pragma once

/// JSON encoding of every struct with a field list, with Kubernetes' field
/// names and `omitempty` semantics. Decoding ignores unknown keys, treats null
/// as absent, and reports type mismatches with the field path.

#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/fields.hpp"

namespace deckhand::wire {

namespace jdetail {

template <class T>
bool is_empty(const T& x) {
  if constexpr (is_opt<T>::value) {
    return !x.has_value();
  } else if constexpr (std::is_same_v<T, bool>) {
    return !x;
  } else if constexpr (std::is_arithmetic_v<T>) {
    return x == 0;
  } else if constexpr (std::is_same_v<T, int_or_string>) {
    return x.value.empty();
  } else if constexpr (std::is_same_v<T, std::string> || detail::is_vector<T>::value ||
                       detail::is_string_map<T>::value) {
    return x.empty();
  } else {
    bool empty = true;
    for_each_field<T>([&](auto desc) {
      if (empty && !is_empty(x.*(desc.ptr)))
        empty = false;
    });
    return empty;
  }
}

template <class T>
nlohmann::json to_json_value(const T& x) {
  if constexpr (is_opt<T>::value) {
    return x ? to_json_value(*x) : nlohmann::json();
  } else if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
    return x;
  } else if constexpr (std::is_same_v<T, int_or_string>) {
    if (x.is_int())
      return std::stoll(x.value);
    return x.value;
  } else if constexpr (detail::is_vector<T>::value) {
    auto arr = nlohmann::json::array();
    for (const auto& e : x)
      arr.push_back(to_json_value(e));
    return arr;
  } else if constexpr (detail::is_string_map<T>::value) {
    auto obj = nlohmann::json::object();
    for (const auto& [k, v] : x)
      obj[k] = to_json_value(v);
    return obj;
  } else {
    auto obj = nlohmann::json::object();
    for_each_field<T>([&](auto desc) {
      const auto& member = x.*(desc.ptr);
      if (desc.mode == json_mode::always || !is_empty(member))
        obj[desc.name] = to_json_value(member);
    });
    return obj;
  }
}

inline error json_type_error(const std::string& path, const char* expected) {
  return {errc::invalid, path + ": expected " + expected};
}

template <class T>
error from_json_value(const nlohmann::json& j, T& x, const std::string& path) {
  if (j.is_null()) {
    if constexpr (is_opt<T>::value)
      x.reset();
    return {};
  }
  if constexpr (is_opt<T>::value) {
    typename T::value_type v{};
    if (auto err = from_json_value(j, v, path))
      return err;
    x = std::move(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean())
      return json_type_error(path, "boolean");
    x = j.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (j.is_number_unsigned()) {
      auto v = j.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        return json_type_error(path, "integer in range");
      x = static_cast<T>(v);
    } else if (j.is_number_integer()) {
      auto v = j.get<int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (v < 0)
          return json_type_error(path, "non-negative integer");
      } else if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                 v > static_cast<int64_t>(std::numeric_limits<T>::max())) {
        return json_type_error(path, "integer in range");
      }
      x = static_cast<T>(v);
    } else {
      return json_type_error(path, "integer");
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string())
      return json_type_error(path, "string");
    x = j.get<std::string>();
  } else if constexpr (std::is_same_v<T, int_or_string>) {
    if (j.is_string())
      x.value = j.get<std::string>();
    else if (j.is_number_integer())
      x.value = std::to_string(j.get<int64_t>());
    else
      return json_type_error(path, "integer or string");
  } else if constexpr (detail::is_vector<T>::value) {
    if (!j.is_array())
      return json_type_error(path, "array");
    x.clear();
    x.resize(j.size());
    for (std::size_t i = 0; i < j.size(); ++i)
      if (auto err = from_json_value(j[i], x[i], path + "[" + std::to_string(i) + "]"))
        return err;
  } else if constexpr (detail::is_string_map<T>::value) {
    if (!j.is_object())
      return json_type_error(path, "object");
    x.clear();
    for (auto it = j.begin(); it != j.end(); ++it) {
      typename T::mapped_type v{};
      if (auto err = from_json_value(it.value(), v, path + "." + it.key()))
        return err;
      x.insert_or_assign(it.key(), std::move(v));
    }
  } else {
    if (!j.is_object())
      return json_type_error(path, "object");
    error err;
    for_each_field<T>([&](auto desc) {
      if (err)
        return;
      auto it = j.find(desc.name);
      if (it != j.end())
        err = from_json_value(*it, x.*(desc.ptr),
                              path.empty() ? std::string(desc.name) : path + "." + desc.name);
    });
    return err;
  }
  return {};
}

}  // namespace jdetail

/// `x` as Kubernetes-shaped JSON.
template <class T>
nlohmann::json to_json(const T& x) {
  return jdetail::to_json_value(x);
}

/// Decodes Kubernetes-shaped JSON into `T`.
template <class T>
result<T> from_json(const nlohmann::json& j) {
  T x{};
  if (auto err = jdetail::from_json_value(j, x, std::string{}))
    return err;
  return x;
}

}  // namespace deckhand::wire
