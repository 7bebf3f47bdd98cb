#include "deckhand/oci/quantity.hpp"

#include <limits>

namespace deckhand::oci {

namespace {

__extension__ typedef __int128 i128;

constexpr int max_significant_digits = 20;  // < 2^67: times 2^60 still fits in i128

/// The quantity times 10^`extra_exp10`, rounded up away from zero.
result<int64_t> scaled(const std::string& text, int extra_exp10) {
  auto bad = [&](const std::string& why) {
    return error{errc::invalid, "quantity \"" + text + "\" is not valid (" + why +
                                    "); expected a number with an optional suffix such as "
                                    "100m, 0.5, 2, 64Mi, 1G or 1e3"};
  };
  if (text.empty())
    return bad("empty");
  if (text.size() > 64)
    return bad("longer than 64 characters");

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
        return bad("two decimal points");
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
    return bad("no digits");
  // Trailing zeros of the fraction carry no value.
  while (frac_digits > 0 && !digits.empty() && digits.back() == '0') {
    digits.pop_back();
    --frac_digits;
  }
  if (frac_digits > 0 && digits.empty())
    frac_digits = 0;

  // Suffix: binary (Ki..Ei), decimal (n u m "" k M G T P E) or an exponent.
  const std::string suffix = text.substr(i);
  int exp10 = 0, exp2 = 0;
  if (suffix.empty()) {
  } else if (suffix == "Ki") {
    exp2 = 10;
  } else if (suffix == "Mi") {
    exp2 = 20;
  } else if (suffix == "Gi") {
    exp2 = 30;
  } else if (suffix == "Ti") {
    exp2 = 40;
  } else if (suffix == "Pi") {
    exp2 = 50;
  } else if (suffix == "Ei") {
    exp2 = 60;
  } else if (suffix == "n") {
    exp10 = -9;
  } else if (suffix == "u") {
    exp10 = -6;
  } else if (suffix == "m") {
    exp10 = -3;
  } else if (suffix == "k") {
    exp10 = 3;
  } else if (suffix == "M") {
    exp10 = 6;
  } else if (suffix == "G") {
    exp10 = 9;
  } else if (suffix == "T") {
    exp10 = 12;
  } else if (suffix == "P") {
    exp10 = 15;
  } else if (suffix == "E") {
    exp10 = 18;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    std::size_t j = 1;
    bool neg_exp = false;
    if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) {
      neg_exp = suffix[j] == '-';
      ++j;
    }
    if (j == suffix.size() || suffix.size() - j > 4)
      return bad("bad exponent");
    int e = 0;
    for (; j < suffix.size(); ++j) {
      if (suffix[j] < '0' || suffix[j] > '9')
        return bad("bad exponent");
      e = e * 10 + (suffix[j] - '0');
    }
    exp10 = neg_exp ? -e : e;
  } else {
    return bad("unknown suffix \"" + suffix + "\"");
  }

  if (digits.empty())
    return int64_t{0};
  if (static_cast<int>(digits.size()) > max_significant_digits)
    return error{errc::invalid, "quantity \"" + text + "\" has more than " +
                                    std::to_string(max_significant_digits) + " significant digits"};
  i128 n = 0;
  for (char ch : digits)
    n = n * 10 + (ch - '0');
  n <<= exp2;

  const i128 limit = std::numeric_limits<int64_t>::max();
  auto too_large = [&] { return error{errc::too_large, "quantity \"" + text + "\" is too large"}; };
  int e = exp10 + extra_exp10 - frac_digits;
  if (e >= 0) {
    for (int k = 0; k < e; ++k) {
      if (n > limit)
        return too_large();
      n *= 10;
    }
  } else {
    // Round up: a positive remainder adds one (away from zero).
    if (-e > 38)
      n = 1;
    else {
      i128 d = 1;
      for (int k = 0; k < -e; ++k)
        d *= 10;
      n = n / d + (n % d != 0 ? 1 : 0);
    }
  }
  if (n > limit)
    return too_large();
  auto v = static_cast<int64_t>(n);
  return negative ? -v : v;
}

}  // namespace

result<int64_t> quantity_milli_value(const std::string& text) { return scaled(text, 3); }

result<int64_t> quantity_value(const std::string& text) { return scaled(text, 0); }

}  // namespace deckhand::oci
