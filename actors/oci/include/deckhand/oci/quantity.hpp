#pragma once

/// Kubernetes resource quantities ("500m", "0.5", "2", "64Mi", "1G", "1e3",
/// "128974848"), parsed exactly (no floating point) with the rounding of
/// k8s.io/apimachinery's Quantity: Value() and MilliValue() round up, away
/// from zero.

#include <cstdint>
#include <string>

#include "deckhand/common/result.hpp"

namespace deckhand::oci {

/// The quantity in thousandths of its unit (Quantity.MilliValue()): "100m"
/// and "0.1" give 100, "2" gives 2000, "1n" gives 1 (rounded up).
/// `errc::invalid` for text that is not a quantity, `errc::too_large` when the
/// result does not fit in int64.
result<int64_t> quantity_milli_value(const std::string& text);

/// The quantity in whole units (Quantity.Value()): "64Mi" gives 67108864,
/// "1G" gives 1000000000, "1e3" gives 1000, "0.5" gives 1 (rounded up).
result<int64_t> quantity_value(const std::string& text);

}  // namespace deckhand::oci
