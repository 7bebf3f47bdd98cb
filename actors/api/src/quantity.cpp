#include "deckhand/api/quantity.hpp"

#include <limits>

namespace deckhand::api {

namespace {

using i128 = quantity::nanos_type;

/// More significant digits than this could overflow once scaled by 2^60 and
/// 10^9; Kubernetes objects never come close.
constexpr int max_significant_digits = 20;
constexpr i128 nanos_per_unit = 1'000'000'000;

/// 2^127 - 1 (C++20 defines the shift into the sign bit).
constexpr i128 i128_max = ~(static_cast<i128>(1) << 127);

error invalid(std::string_view text, const std::string& why) {
  return {errc::invalid, "quantity \"" + std::string(text) + "\" is not valid (" + why +
                             "); expected a number with an optional suffix such as "
                             "100m, 0.5, 2, 64Mi, 1G or 1e3"};
}

/// The exponents of 10 and 2 a suffix stands for; false if it is none.
bool suffix_exponents(std::string_view suffix, int& exp10, int& exp2) {
  struct entry {
    std::string_view text;
    int exp10, exp2;
  };
  static constexpr entry table[] = {{"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},
                                    {"k", 3, 0},   {"M", 6, 0},   {"G", 9, 0},   {"T", 12, 0},
                                    {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
                                    {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60}};
  for (const auto& e : table)
    if (e.text == suffix) {
      exp10 = e.exp10;
      exp2 = e.exp2;
      return true;
    }
  return false;
}

/// `nanos` divided by `unit`, rounded up away from zero, if it fits in int64.
result<int64_t> scaled_down(i128 nanos, i128 unit) {
  bool negative = nanos < 0;
  i128 n = negative ? -nanos : nanos;
  i128 q = n / unit + (n % unit != 0 ? 1 : 0);
  if (q > std::numeric_limits<int64_t>::max())
    return error{errc::too_large, "quantity is too large"};
  auto v = static_cast<int64_t>(q);
  return negative ? -v : v;
}

}  // namespace

result<quantity> quantity::parse(std::string_view text) {
  if (text.empty())
    return invalid(text, "empty");
  if (text.size() > 64)
    return invalid(text, "longer than 64 characters");

  std::size_t i = 0;
  bool negative = false;
  if (text[i] == '+' || text[i] == '-') {
    negative = text[i] == '-';
    ++i;
  }
  // Mantissa: digits with at most one '.', at least one digit.
  std::string digits;  // significant digits, leading zeros dropped
  int frac_digits = 0;
  bool any_digit = false, dot = false;
  for (; i < text.size(); ++i) {
    char ch = text[i];
    if (ch == '.') {
      if (dot)
        return invalid(text, "two decimal points");
      dot = true;
    } else if (ch >= '0' && ch <= '9') {
      any_digit = true;
      if (dot)
        ++frac_digits;
      if (!digits.empty() || ch != '0')
        digits.push_back(ch);
    } else {
      break;
    }
  }
  if (!any_digit)
    return invalid(text, "no digits");
  // Trailing zeros of the fraction carry no value.
  while (frac_digits > 0 && !digits.empty() && digits.back() == '0') {
    digits.pop_back();
    --frac_digits;
  }
  if (digits.empty())
    frac_digits = 0;

  const std::string_view suffix = text.substr(i);
  int exp10 = 0, exp2 = 0;
  if (!suffix_exponents(suffix, exp10, exp2)) {
    if (suffix[0] != 'e' && suffix[0] != 'E')
      return invalid(text, "unknown suffix \"" + std::string(suffix) + "\"");
    std::size_t j = 1;
    bool neg_exp = false;
    if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) {
      neg_exp = suffix[j] == '-';
      ++j;
    }
    if (j == suffix.size() || suffix.size() - j > 4)
      return invalid(text, "bad exponent");
    int e = 0;
    for (; j < suffix.size(); ++j) {
      if (suffix[j] < '0' || suffix[j] > '9')
        return invalid(text, "bad exponent");
      e = e * 10 + (suffix[j] - '0');
    }
    exp10 = neg_exp ? -e : e;
  }

  quantity q;
  if (digits.empty())
    return q;
  if (static_cast<int>(digits.size()) > max_significant_digits)
    return error{errc::invalid, "quantity \"" + std::string(text) + "\" has more than " +
                                    std::to_string(max_significant_digits) + " significant digits"};
  i128 n = 0;
  for (char ch : digits)
    n = n * 10 + (ch - '0');
  n <<= exp2;  // at most 10^20 * 2^60 < 2^127

  auto too_large = [&] {
    return error{errc::too_large, "quantity \"" + std::string(text) + "\" is too large"};
  };
  int e = exp10 + 9 - frac_digits;  // to nano-units
  if (e >= 0) {
    for (int k = 0; k < e; ++k) {
      if (n > i128_max / 10)
        return too_large();
      n *= 10;
    }
  } else if (-e > 38) {
    n = 1;  // below 1n: rounded up to 1n, as ParseQuantity does
  } else {
    i128 d = 1;
    for (int k = 0; k < -e; ++k)
      d *= 10;
    n = n / d + (n % d != 0 ? 1 : 0);
  }
  q.nanos_ = negative ? -n : n;
  return q;
}

result<int64_t> quantity::value() const { return scaled_down(nanos_, nanos_per_unit); }

result<int64_t> quantity::milli_value() const { return scaled_down(nanos_, 1'000'000); }

namespace {

result<int64_t> with_text(result<int64_t> r, std::string_view text) {
  if (!r && r.err().code == errc::too_large)
    return error{errc::too_large, "quantity \"" + std::string(text) + "\" is too large"};
  return r;
}

}  // namespace

result<int64_t> quantity_milli_value(std::string_view text) {
  auto q = quantity::parse(text);
  if (!q)
    return std::move(q).err();
  return with_text(q->milli_value(), text);
}

result<int64_t> quantity_value(std::string_view text) {
  auto q = quantity::parse(text);
  if (!q)
    return std::move(q).err();
  return with_text(q->value(), text);
}

}  // namespace deckhand::api
