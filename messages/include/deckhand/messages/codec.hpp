#pragma once

/// msgpack map encoding of every struct with a field list, and the typed body
/// decoder. Unknown keys are ignored, missing keys keep their defaults, nil
/// counts as missing, anything else of the wrong type is an error naming the
/// field path.

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <msgpack.hpp>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/header.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::wire {

namespace detail {

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

template <class T>
struct is_string_map : std::false_type {};
template <class V, class C, class A>
struct is_string_map<std::map<std::string, V, C, A>> : std::true_type {};

template <class Packer, class T>
void pack_value(Packer& pk, const T& x) {
  if constexpr (is_opt<T>::value) {
    if (x)
      pack_value(pk, *x);
    else
      pk.pack_nil();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (x)
      pk.pack_true();
    else
      pk.pack_false();
  } else if constexpr (std::is_integral_v<T>) {
    pk.pack(x);
  } else if constexpr (std::is_same_v<T, int_or_string>) {
    pack_value(pk, x.value);
  } else if constexpr (std::is_same_v<T, std::string>) {
    pk.pack_str(static_cast<uint32_t>(x.size()));
    pk.pack_str_body(x.data(), static_cast<uint32_t>(x.size()));
  } else if constexpr (is_vector<T>::value) {
    pk.pack_array(static_cast<uint32_t>(x.size()));
    for (const auto& e : x)
      pack_value(pk, e);
  } else if constexpr (is_string_map<T>::value) {
    pk.pack_map(static_cast<uint32_t>(x.size()));
    for (const auto& [k, v] : x) {
      pack_value(pk, k);
      pack_value(pk, v);
    }
  } else {
    static_assert(has_fields<T>, "type has no field list");
    constexpr auto n = std::tuple_size_v<decltype(T::fields())>;
    pk.pack_map(static_cast<uint32_t>(n));
    for_each_field<T>([&](auto desc) {
      pack_value(pk, std::string{desc.name});
      pack_value(pk, x.*(desc.ptr));
    });
  }
}

inline error type_error(const std::string& path, const char* expected) {
  return {errc::invalid, path + ": expected " + expected};
}

template <class T>
error unpack_value(const msgpack::object& o, T& x, const std::string& path) {
  using msgpack::type::object_type;
  if (o.type == object_type::NIL) {
    if constexpr (is_opt<T>::value)
      x.reset();
    return {};
  }
  if constexpr (is_opt<T>::value) {
    typename T::value_type v{};
    if (auto err = unpack_value(o, v, path))
      return err;
    x = std::move(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (o.type != object_type::BOOLEAN)
      return type_error(path, "boolean");
    x = o.via.boolean;
  } else if constexpr (std::is_integral_v<T>) {
    if (o.type == object_type::POSITIVE_INTEGER) {
      if (o.via.u64 > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        return type_error(path, "integer in range");
      x = static_cast<T>(o.via.u64);
    } else if (o.type == object_type::NEGATIVE_INTEGER) {
      if constexpr (std::is_unsigned_v<T>) {
        return type_error(path, "unsigned integer");
      } else {
        if (o.via.i64 < static_cast<int64_t>(std::numeric_limits<T>::min()))
          return type_error(path, "integer in range");
        x = static_cast<T>(o.via.i64);
      }
    } else {
      return type_error(path, "integer");
    }
  } else if constexpr (std::is_same_v<T, int_or_string>) {
    if (o.type == object_type::POSITIVE_INTEGER)
      x.value = std::to_string(o.via.u64);
    else if (o.type == object_type::STR)
      x.value.assign(o.via.str.ptr, o.via.str.size);
    else
      return type_error(path, "integer or string");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (o.type != object_type::STR)
      return type_error(path, "string");
    x.assign(o.via.str.ptr, o.via.str.size);
  } else if constexpr (is_vector<T>::value) {
    if (o.type != object_type::ARRAY)
      return type_error(path, "array");
    x.clear();
    x.resize(o.via.array.size);
    for (uint32_t i = 0; i < o.via.array.size; ++i)
      if (auto err = unpack_value(o.via.array.ptr[i], x[i], path + "[" + std::to_string(i) + "]"))
        return err;
  } else if constexpr (is_string_map<T>::value) {
    if (o.type != object_type::MAP)
      return type_error(path, "map");
    x.clear();
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != object_type::STR)
        return type_error(path, "string keys");
      std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
      typename T::mapped_type value{};
      if (auto err = unpack_value(kv.val, value, path + "." + key))
        return err;
      x.insert_or_assign(std::move(key), std::move(value));
    }
  } else {
    static_assert(has_fields<T>, "type has no field list");
    if (o.type != object_type::MAP)
      return type_error(path, "map");
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != object_type::STR)
        return type_error(path, "string keys");
      std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
      error err;
      for_each_field<T>([&](auto desc) {
        if (!err && key == desc.name)
          err = unpack_value(kv.val, x.*(desc.ptr), path + "." + desc.name);
      });
      if (err)
        return err;
    }
  }
  return {};
}

/// The error for a message of type id `got` where `expected` was wanted.
error type_mismatch(const char* expected, uint16_t got);

/// Decodes raw msgpack bytes into an object with limits; errors as values.
result<msgpack::object_handle> unpack_limited(const std::string& bytes,
                                              const decode_limits& limits);

}  // namespace detail

/// Encodes `x` as a msgpack map.
template <class T>
std::string encode_body(const T& x) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  detail::pack_value(pk, x);
  return std::string(buf.data(), buf.size());
}

/// Decodes a msgpack body into `T` (limits enforced).
template <class T>
result<T> decode_body(const std::string& bytes, const decode_limits& limits = {}) {
  auto handle = detail::unpack_limited(bytes, limits);
  if (!handle)
    return std::move(handle).err();
  T x{};
  if (auto err = detail::unpack_value(handle->get(), x, T::type_name))
    return err;
  return x;
}

/// Decodes the body of `env`, checking that the header announces type `T`.
/// An error reply is turned into its error.
template <class T>
result<T> decode_as(const envelope& env, const decode_limits& limits = {}) {
  if (env.hdr.type == error_reply::type_id) {
    auto er = decode_body<error_reply>(env.body, limits);
    if (!er)
      return std::move(er).err();
    auto code = er->code > 0 && er->code <= static_cast<int32_t>(errc::unsupported)
                    ? static_cast<errc>(er->code)
                    : errc::internal;
    return error{code, er->message};
  }
  if (env.hdr.type != T::type_id)
    return detail::type_mismatch(T::type_name, env.hdr.type);
  return decode_body<T>(env.body, limits);
}

/// Builds an envelope for `x`.
template <class T>
envelope make_envelope(const T& x, uint64_t correlation_id = 0, uint16_t flags = 0) {
  envelope env;
  env.hdr.type = T::type_id;
  env.hdr.flags = flags;
  env.hdr.correlation_id = correlation_id;
  env.body = encode_body(x);
  return env;
}

}  // namespace deckhand::wire

namespace deckhand::wire {

/// An error reply envelope for request `correlation_id`.
inline envelope make_error_envelope(const error& err, uint64_t correlation_id) {
  error_reply er;
  er.code = static_cast<int32_t>(err.code);
  er.message = err.message;
  return make_envelope(er, correlation_id, flag_reply | flag_error);
}

}  // namespace deckhand::wire
