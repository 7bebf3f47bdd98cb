#include "deckhand/messages/header.hpp"

#include <cstring>
#include <random>

#include <msgpack.hpp>

#include "deckhand/messages/codec.hpp"

namespace deckhand::wire {

namespace {

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void put64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::array<uint8_t, header_size> encode_header(const header& h) {
  std::array<uint8_t, header_size> out{};
  out[0] = 'D';
  out[1] = 'K';
  out[2] = h.major;
  out[3] = h.minor;
  put16(&out[4], h.type);
  put16(&out[6], h.flags);
  put64(&out[8], h.correlation_id);
  put64(&out[16], h.incarnation);
  return out;
}

result<header> decode_header(const void* data, std::size_t size) {
  if (size != header_size)
    return error{errc::invalid, "header frame of " + std::to_string(size) + " bytes, expected " +
                                    std::to_string(header_size)};
  auto p = static_cast<const uint8_t*>(data);
  if (p[0] != 'D' || p[1] != 'K')
    return error{errc::invalid, "bad magic in header frame"};
  header h;
  h.major = p[2];
  h.minor = p[3];
  if (h.major != protocol_major)
    return error{errc::unsupported, "protocol major version " + std::to_string(h.major) +
                                        " not supported (this process speaks " +
                                        std::to_string(protocol_major) + ")"};
  h.type = get16(&p[4]);
  h.flags = get16(&p[6]);
  h.correlation_id = get64(&p[8]);
  h.incarnation = get64(&p[16]);
  return h;
}

result<envelope> decode_frames(const void* hdr, std::size_t hdr_size, const void* body,
                               std::size_t body_size, const decode_limits& limits) {
  auto h = decode_header(hdr, hdr_size);
  if (!h)
    return std::move(h).err();
  if (body_size > limits.max_body)
    return error{errc::too_large, "message body of " + std::to_string(body_size) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(limits.max_body)};
  envelope env;
  env.hdr = *h;
  env.body.assign(static_cast<const char*>(body), body_size);
  return env;
}

uint64_t new_incarnation() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0)
    v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return v;
}

namespace detail {

error type_mismatch(const char* expected, uint16_t got) {
  std::string msg = "expected message ";
  msg += expected;
  msg += ", got type ";
  msg += std::to_string(got);
  return {errc::invalid, std::move(msg)};
}

result<msgpack::object_handle> unpack_limited(const std::string& bytes,
                                              const decode_limits& limits) {
  if (bytes.size() > limits.max_body)
    return error{errc::too_large, "message body exceeds the size limit"};
  try {
    std::size_t offset = 0;
    msgpack::unpack_limit lim(limits.max_elements, limits.max_elements, limits.max_string,
                              limits.max_string, 0, limits.max_depth);
    auto handle = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, lim);
    if (offset != bytes.size())
      return error{errc::invalid, "trailing bytes after msgpack body"};
    return handle;
  } catch (const msgpack::depth_size_overflow& e) {
    return error{errc::too_large, std::string("msgpack nesting too deep: ") + e.what()};
  } catch (const msgpack::size_overflow& e) {
    return error{errc::too_large, std::string("msgpack limit exceeded: ") + e.what()};
  } catch (const std::exception& e) {
    return error{errc::invalid, std::string("malformed msgpack: ") + e.what()};
  }
}

}  // namespace detail

}  // namespace deckhand::wire
