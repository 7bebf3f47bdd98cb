#pragma once

/// Kubernetes resource quantities (k8s.io/apimachinery's resource.Quantity):
/// "500m", "0.5", "2", "64Mi", "1G", "1e3", "128974848". Parsed exactly, with
/// integer arithmetic only, so "1Gi" and "1024Mi" are the same quantity.

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "deckhand/common/result.hpp"

namespace deckhand::api {

/// A quantity held exactly in nano-units, the finest precision Kubernetes
/// keeps (ParseQuantity rounds anything finer up to 1n).
class quantity {
 public:
  __extension__ typedef __int128 nanos_type;

  quantity() = default;

  /// Parses the grammar of resource.ParseQuantity: a signed decimal number
  /// then one suffix, decimal SI (n u m k M G T P E), binary (Ki Mi Gi Ti Pi
  /// Ei) or a decimal exponent (e3, E-2). `errc::invalid` for anything else,
  /// `errc::too_large` beyond what 128 bits of nano-units hold.
  static result<quantity> parse(std::string_view text);

  /// Whole units, rounded up away from zero as Quantity.Value() does ("0.5"
  /// gives 1); `errc::too_large` when that does not fit in int64.
  result<int64_t> value() const;
  /// Thousandths, rounded up away from zero as Quantity.MilliValue() does
  /// ("1n" gives 1).
  result<int64_t> milli_value() const;

  int sign() const { return nanos_ > 0 ? 1 : nanos_ < 0 ? -1 : 0; }
  bool is_zero() const { return nanos_ == 0; }
  nanos_type nanos() const { return nanos_; }

  quantity& operator+=(const quantity& other) {
    nanos_ += other.nanos_;
    return *this;
  }

  friend bool operator==(const quantity&, const quantity&) = default;
  friend std::strong_ordering operator<=>(const quantity& a, const quantity& b) {
    return a.nanos_ <=> b.nanos_;
  }

 private:
  nanos_type nanos_ = 0;
};

/// `text` in thousandths of its unit: "100m" and "0.1" give 100, "2" gives
/// 2000, "1n" gives 1 (rounded up).
result<int64_t> quantity_milli_value(std::string_view text);

/// `text` in whole units: "64Mi" gives 67108864, "1G" gives 1000000000,
/// "1e3" gives 1000, "0.5" gives 1 (rounded up).
result<int64_t> quantity_value(std::string_view text);

}  // namespace deckhand::api
