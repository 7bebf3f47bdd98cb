#include "deckhand/api/time.hpp"

#include <cstdio>

namespace deckhand::api {

namespace {

using std::chrono::nanoseconds;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days_from_civil): no time zone database, no gmtime/timegm.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct civil {
  int64_t year;
  unsigned month, day, hour, minute, second;
  int64_t nanos;
};

civil to_civil(time_point t) {
  int64_t ns = std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  // civil_from_days
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  civil c{};
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = static_cast<int64_t>(yoe) + era * 400 + (c.month <= 2);
  c.hour = static_cast<unsigned>(rem / 3600);
  c.minute = static_cast<unsigned>(rem / 60 % 60);
  c.second = static_cast<unsigned>(rem % 60);
  c.nanos = frac;
  return c;
}

std::string seconds_part(const civil& c) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u", static_cast<long long>(c.year),
                c.month, c.day, c.hour, c.minute, c.second);
  return buf;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size())
    return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::string format_rfc3339(time_point t) { return seconds_part(to_civil(t)) + "Z"; }

std::string format_rfc3339_micro(time_point t) {
  auto c = to_civil(t);
  char buf[32];
  std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(c.nanos / 1000));
  return seconds_part(c) + buf + "Z";
}

std::string format_rfc3339_nano(time_point t) {
  auto c = to_civil(t);
  std::string out = seconds_part(c);
  if (c.nanos != 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(c.nanos));
    std::string frac = buf;
    while (frac.back() == '0')
      frac.pop_back();
    out += frac;
  }
  return out + "Z";
}

std::string now_rfc3339() { return format_rfc3339(std::chrono::system_clock::now()); }

result<time_point> parse_rfc3339(std::string_view s) {
  auto bad = [&] {
    return error{errc::invalid,
                 "\"" + std::string(s) + "\" is not an RFC 3339 time such as 2006-01-02T15:04:05Z"};
  };
  int year, month, day, hour, minute, second;
  if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, month) ||
      s[7] != '-' || !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s, 11, 2, hour) || s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' ||
      !digits(s, 17, 2, second))
    return bad();
  static constexpr int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] ||
      (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 59)
    return bad();
  std::size_t i = 19;
  int64_t nanos = 0;
  if (s[i] == '.') {
    ++i;
    int n = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++n) {
      if (n >= 9)
        return bad();
      nanos = nanos * 10 + (s[i] - '0');
    }
    if (n == 0)
      return bad();
    for (; n < 9; ++n)
      nanos *= 10;
  }
  int64_t offset = 0;
  std::string_view zone = s.substr(i);
  if (zone == "Z" || zone == "z") {
  } else {
    int oh, om;
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || !digits(zone, 1, 2, oh) ||
        zone[3] != ':' || !digits(zone, 4, 2, om) || oh > 23 || om > 59)
      return bad();
    offset = (oh * 3600 + om * 60) * (zone[0] == '-' ? -1 : 1);
  }
  int64_t secs =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset;
  return time_point(std::chrono::duration_cast<time_point::duration>(std::chrono::seconds(secs) +
                                                                     nanoseconds(nanos)));
}

}  // namespace deckhand::api
