#pragma once

/// The iptables data plane: the nftables plane's behaviour through
/// `iptables-restore --noflush`, one transaction per sync, in chains of its own
/// (PREFIX-SERVICES, PREFIX-NODEPORTS, PREFIX-SVC-*, PREFIX-EXT-*, PREFIX-SEP-*,
/// PREFIX-MARK-MASQ, PREFIX-POSTROUTING in nat; PREFIX-SERVICES and
/// PREFIX-EXTERNAL in filter for rejects), reached by jump rules from the
/// builtin chains that are added in the same transaction when missing. Chain
/// names are stable hashes of the Service port (and endpoint), so a restarted
/// proxy rewrites its old chains in place. Endpoint choice: `-m statistic
/// --mode random --probability` 1/n, 1/(n-1), ... 1, DNAT straight from the
/// SVC chain (SEP chains only with ClientIP affinity, `-m recent` per
/// endpoint): a chain per endpoint makes iptables-restore take seconds at
/// 10,000 endpoints. Hairpin: a Service's own endpoints are marked for
/// masquerade before the choice (so a backend reaching its own Service is
/// masqueraded whichever endpoint it lands on). No usable endpoints: REJECT.
/// iptables-save is read only on a full sync.

#include <optional>
#include <set>
#include <string>

#include "deckhand/proxy/data_plane.hpp"
#include "deckhand/proxy/kernel.hpp"

namespace deckhand::proxy {

/// What iptables-save shows of ours.
struct iptables_objects {
  std::set<std::string> chains;  ///< "nat NAME" / "filter NAME", our prefix only
  std::set<std::string> jumps;   ///< "nat PREROUTING NAME": builtin chain jumps to ours
};

/// Parses iptables-save output (any tables) for chains and jumps with `prefix`.
iptables_objects parse_iptables_save(const std::string& text, const std::string& prefix);

/// The iptables-restore input turning the kernel into `desired`; `previous`
/// null: full (every chain rewritten, strays in `existing` deleted).
std::string render_iptables(const service_map& desired, const service_map* previous,
                            const iptables_objects& existing, const kernel_options& opts);

class iptables_data_plane : public data_plane {
 public:
  explicit iptables_data_plane(kernel_options opts = {});
  std::string mode() const override { return "iptables"; }
  result<void> apply(const service_map& desired, const service_map& previous) override;
  void request_full_sync() override { full_next_ = true; }
  result<void> cleanup() override;

  const std::string& last_transaction() const { return last_text_; }
  bool last_was_full() const { return last_full_; }

 private:
  kernel_options opts_;
  std::optional<service_map> applied_;
  bool full_next_ = true;
  std::string last_text_;
  bool last_full_ = false;
};

/// True when iptables-restore can be run as root.
bool iptables_available();

}  // namespace deckhand::proxy
