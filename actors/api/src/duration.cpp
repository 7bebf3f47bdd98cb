#include "deckhand/api/duration.hpp"

#include <cstdint>

namespace deckhand::api {

namespace {

constexpr uint64_t ns = 1, us = 1000 * ns, ms = 1000 * us, sec = 1000 * ms, minute = 60 * sec,
                   hour = 60 * minute;
constexpr uint64_t max_duration = uint64_t{1} << 63;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

uint64_t unit_of(std::string_view u) {
  if (u == "ns")
    return ns;
  if (u == "us" || u == "\u00b5s" || u == "\u03bcs")
    return us;
  if (u == "ms")
    return ms;
  if (u == "s")
    return sec;
  if (u == "m")
    return minute;
  if (u == "h")
    return hour;
  return 0;
}

/// Writes the lowest `prec` digits of `v` as a fraction at the front of
/// `out` (trailing zeros and a bare dot dropped), returns v / 10^prec.
uint64_t prepend_fraction(std::string& out, uint64_t v, int prec) {
  std::string frac;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    char digit = static_cast<char>('0' + v % 10);
    print = print || digit != '0';
    if (print)
      frac.insert(frac.begin(), digit);
    v /= 10;
  }
  if (print)
    out.insert(0, "." + frac);
  return v;
}

}  // namespace

result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  auto invalid = [&] { return error{errc::invalid, "time: invalid duration " + quoted}; };
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0")
    return std::chrono::nanoseconds(0);
  if (s.empty())
    return invalid();
  uint64_t total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || is_digit(s[0])))
      return invalid();
    // The integer part; overflow is an error.
    uint64_t v = 0;
    std::size_t i = 0;
    for (; i < s.size() && is_digit(s[i]); ++i) {
      if (v > (max_duration - 1) / 10)
        return invalid();
      v = v * 10 + static_cast<uint64_t>(s[i] - '0');
      if (v > max_duration)
        return invalid();
    }
    bool pre = i > 0;
    s.remove_prefix(i);
    // The fraction; digits beyond what fits are ignored, as Go does.
    uint64_t f = 0;
    double scale = 1;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      bool overflow = false;
      std::size_t j = 0;
      for (; j < s.size() && is_digit(s[j]); ++j) {
        if (overflow)
          continue;
        if (f > (max_duration - 1) / 10) {
          overflow = true;
          continue;
        }
        uint64_t y = f * 10 + static_cast<uint64_t>(s[j] - '0');
        if (y > max_duration) {
          overflow = true;
          continue;
        }
        f = y;
        scale *= 10;
      }
      post = j > 0;
      s.remove_prefix(j);
    }
    if (!pre && !post)
      return invalid();
    std::size_t k = 0;
    while (k < s.size() && s[k] != '.' && !is_digit(s[k]))
      ++k;
    if (k == 0)
      return error{errc::invalid, "time: missing unit in duration " + quoted};
    std::string_view u = s.substr(0, k);
    s.remove_prefix(k);
    uint64_t unit = unit_of(u);
    if (unit == 0)
      return error{errc::invalid,
                   "time: unknown unit \"" + std::string(u) + "\" in duration " + quoted};
    if (v > max_duration / unit)
      return invalid();
    v *= unit;
    if (f > 0) {
      v += static_cast<uint64_t>(static_cast<double>(f) * (static_cast<double>(unit) / scale));
      if (v > max_duration)
        return invalid();
    }
    total += v;
    if (total > max_duration)
      return invalid();
  }
  if (negative)
    return std::chrono::nanoseconds(static_cast<int64_t>(0 - total));
  if (total > max_duration - 1)
    return invalid();
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

std::string format_duration(std::chrono::nanoseconds d) {
  const int64_t n = d.count();
  const bool negative = n < 0;
  uint64_t u = negative ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
  std::string out;
  if (u < sec) {
    if (u == 0)
      return "0s";
    int prec;
    if (u < us) {
      prec = 0;
      out = "ns";
    } else if (u < ms) {
      prec = 3;
      out = "\u00b5s";
    } else {
      prec = 6;
      out = "ms";
    }
    u = prepend_fraction(out, u, prec);
    out.insert(0, std::to_string(u));
  } else {
    out = "s";
    u = prepend_fraction(out, u, 9);
    out.insert(0, std::to_string(u % 60));
    u /= 60;
    if (u > 0) {
      out.insert(0, std::to_string(u % 60) + "m");
      u /= 60;
      if (u > 0)
        out.insert(0, std::to_string(u) + "h");
    }
  }
  return negative ? "-" + out : out;
}

}  // namespace deckhand::api
