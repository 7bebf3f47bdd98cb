#pragma once

/// The nftables data plane: one table of its own (`ip deckhand-proxy`), laid
/// out like kube-proxy's nftables mode. A verdict map from (ClusterIP . proto
/// . port) and one from (proto . nodePort, on the node's own addresses) jump to
/// a chain per Service port, which DNATs with `numgen random mod N` over an
/// anonymous map of address . port (ClientIP affinity: a lookup in a timed set
/// per endpoint first, and an endpoint chain that records the choice). No
/// chain per endpoint otherwise: chains are what makes a big table slow to
/// load. Hairpin traffic (a pod reaching itself) is masqueraded from one set of
/// (ip . ip). Service ports without usable endpoints are answered with
/// `reject` from filter hooks. Every sync is one `nft -f -` transaction:
/// incremental (only the chains of Service ports that changed, maps refilled)
/// after the first; full (table flushed, every chain redefined in one
/// declarative block, strays deleted; sets, and so affinity, kept) on the
/// first apply, so a new proxy adopts an old table with no gap. A periodic
/// full resync first lists the table and, when it is intact, only refills
/// the maps.

#include <map>
#include <optional>
#include <set>
#include <string>

#include "deckhand/proxy/data_plane.hpp"
#include "deckhand/proxy/kernel.hpp"

namespace deckhand::proxy {

/// Chains and sets found in an existing table.
struct nft_objects {
  bool table = false;
  std::set<std::string> chains;
  std::set<std::string> sets;  ///< sets and maps
  /// Rules per chain (every chain has an entry).
  std::map<std::string, size_t> rules;
};

/// Parses `nft -t list table ip NAME`.
nft_objects parse_nft_listing(const std::string& text);

/// True when `existing` (a listing of the table) holds exactly the chains,
/// rule counts and sets that `desired` renders to.
bool nft_listing_matches(const service_map& desired, const nft_objects& existing,
                         const kernel_options& opts);

/// The transaction turning the table into `desired`. `previous` null: a full
/// sync against `existing` (what the kernel has). Otherwise incremental from
/// `previous` (which must be what the table holds).
std::string render_nftables(const service_map& desired, const service_map* previous,
                            const nft_objects& existing, const kernel_options& opts);

class nftables_data_plane : public data_plane {
 public:
  explicit nftables_data_plane(kernel_options opts = {});
  std::string mode() const override { return "nftables"; }
  result<void> apply(const service_map& desired, const service_map& previous) override;
  void request_full_sync() override { full_next_ = true; }
  result<void> cleanup() override;

  /// The text of the last transaction sent to nft, and whether it was full.
  const std::string& last_transaction() const { return last_text_; }
  bool last_was_full() const { return last_full_; }
  /// Periodic resyncs that found the table intact and only refilled maps.
  size_t verified_resyncs() const { return verified_; }

 private:
  kernel_options opts_;
  std::optional<service_map> applied_;
  bool full_next_ = true;
  std::string last_text_;
  bool last_full_ = false;
  size_t verified_ = 0;
};

/// True when `nft` can be run and we may change the ruleset (root).
bool nftables_available();

}  // namespace deckhand::proxy
