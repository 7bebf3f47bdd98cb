#pragma once

/// The fixed header in front of every message body, and the envelope that
/// pairs them. Layout (24 bytes, big-endian):
///
///   0  'D' 'K'        magic
///   2  major, minor   protocol version; a different major is rejected
///   4  type           message type id (wire.hpp)
///   6  flags          bit 0: reply, bit 1: error reply
///   8  correlation    request id echoed by the reply (0: notification)
///   16 incarnation    the sender's incarnation, new at every process start

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/fields.hpp"

namespace deckhand::wire {

constexpr uint8_t protocol_major = 1;
constexpr uint8_t protocol_minor = 0;
constexpr std::size_t header_size = 24;

enum header_flags : uint16_t {
  flag_reply = 1,
  flag_error = 2,
};

struct header {
  static constexpr const char* type_name = "header";
  uint8_t major = protocol_major;
  uint8_t minor = protocol_minor;
  uint16_t type = 0;
  uint16_t flags = 0;
  uint64_t correlation_id = 0;
  uint64_t incarnation = 0;
  static constexpr auto fields() {
    return std::make_tuple(field("major", &header::major), field("minor", &header::minor),
                           field("type", &header::type), field("flags", &header::flags),
                           field("correlationId", &header::correlation_id),
                           field("incarnation", &header::incarnation));
  }
};

std::array<uint8_t, header_size> encode_header(const header& h);

/// Parses and checks a header frame: size, magic, protocol major.
result<header> decode_header(const void* data, std::size_t size);

/// A header and its still-encoded msgpack body.
struct envelope {
  static constexpr const char* type_name = "envelope";
  header hdr;
  std::string body;
  static constexpr auto fields() {
    return std::make_tuple(field("hdr", &envelope::hdr), field("body", &envelope::body));
  }
};

/// Limits applied to every inbound message before and while decoding.
struct decode_limits {
  std::size_t max_body = 16u << 20;
  std::size_t max_depth = 32;
  std::size_t max_elements = 1u << 20;
  std::size_t max_string = 4u << 20;
};

/// The single entry point for inbound bytes: checks the header and the body
/// size. The body itself is decoded by `decode_body<T>` (codec.hpp).
result<envelope> decode_frames(const void* hdr, std::size_t hdr_size, const void* body,
                               std::size_t body_size, const decode_limits& limits = {});

/// A random 64-bit value, new for every process start (never 0).
uint64_t new_incarnation();

}  // namespace deckhand::wire
