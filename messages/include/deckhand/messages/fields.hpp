#pragma once

/// The field-list machinery of the wire contract.
///
/// Every message and model struct declares its fields once:
///
///   struct env_var {
///     static constexpr const char* type_name = "env_var";
///     std::string name;
///     std::string value;
///     static constexpr auto fields() {
///       return std::make_tuple(field("name", &env_var::name),
///                              field("value", &env_var::value));
///     }
///   };
///
/// That one list yields the msgpack map encoding (keys by name, unknown keys
/// ignored, missing keys keep their defaults), the JSON encoding (Kubernetes
/// field names, empty values omitted unless marked `always`), and CAF's
/// `inspect` so the same struct travels between actors.
///
/// Rules (see style.md): never rename or retype a field; add new ones.

#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/none.hpp>

namespace deckhand::wire {

/// How a field is rendered in JSON when it holds its default value.
enum class json_mode { omit_empty, always };

template <class Class, class Member>
struct field_desc {
  const char* name;
  Member Class::*ptr;
  json_mode mode;
};

/// A field that JSON omits while empty (Kubernetes' `omitempty`).
template <class Class, class Member>
constexpr field_desc<Class, Member> field(const char* name, Member Class::*ptr) {
  return {name, ptr, json_mode::omit_empty};
}

/// A field that JSON always renders, even as 0/false/"" (e.g. restartCount).
template <class Class, class Member>
constexpr field_desc<Class, Member> field_always(const char* name, Member Class::*ptr) {
  return {name, ptr, json_mode::always};
}

/// Kubernetes' IntOrString (e.g. a Service's targetPort): a port number in
/// decimal or a name. JSON and msgpack carry it as a number when it is one.
struct int_or_string {
  std::string value;
  bool is_int() const {
    if (value.empty() || value.size() > 18)
      return false;
    for (char c : value)
      if (c < '0' || c > '9')
        return false;
    return true;
  }
  friend bool operator==(const int_or_string&, const int_or_string&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, int_or_string& x) {
  return f(caf::meta::type_name("int_or_string"), x.value);
}

/// A field whose absence differs from its zero value (Kubernetes' pointer
/// fields: `runAsUser: 0` is root, an absent one is the image's user).
/// Absent: omitted from JSON, nil in msgpack.
template <class T>
struct opt : std::optional<T> {
  using base = std::optional<T>;
  opt() = default;
  opt(std::nullopt_t) {}
  opt(const T& v) : base(v) {}
  opt& operator=(const T& v) {
    base::operator=(v);
    return *this;
  }
  opt& operator=(std::nullopt_t) {
    base::reset();
    return *this;
  }
  friend bool operator==(const opt& a, const opt& b) {
    return static_cast<const std::optional<T>&>(a) == static_cast<const std::optional<T>&>(b);
  }
};

template <class Inspector, class T>
typename Inspector::result_type inspect(Inspector& f, opt<T>& x) {
  bool has = x.has_value();
  T value = x.value_or(T{});
  return f(caf::meta::type_name("opt"), has, value, caf::meta::load_callback([&]() -> caf::error {
             if (has)
               x = value;
             else
               x.reset();
             return caf::none;
           }));
}

template <class T>
struct is_opt : std::false_type {};
template <class T>
struct is_opt<opt<T>> : std::true_type {};

/// True for types that declare a field list.
template <class T>
concept has_fields = requires {
  T::fields();
  { T::type_name } -> std::convertible_to<const char*>;
};

/// Calls `fn(desc)` for every field descriptor of `T`.
template <has_fields T, class Fn>
constexpr void for_each_field(Fn&& fn) {
  std::apply([&](auto... desc) { (fn(desc), ...); }, T::fields());
}

/// CAF 0.17 `inspect` for every struct with a field list.
template <class Inspector, has_fields T>
typename Inspector::result_type inspect(Inspector& f, T& x) {
  return std::apply(
      [&](auto... desc) { return f(caf::meta::type_name(T::type_name), x.*(desc.ptr)...); },
      T::fields());
}

}  // namespace deckhand::wire
