#pragma once

/// The `process` back-end: pods as plain host processes through
/// deckhand-process-oci (the OCI command line without containers), so that
/// the runtime needs no privileges. A pod has no namespace, mount, cgroup or
/// interface of its own: it shares the node's network and /etc files, and a
/// container that mounts a volume is refused (errc::unsupported).

#include "deckhand/runtime/supervised_backend.hpp"

namespace deckhand::runtime {

class process_backend final : public supervised_backend {
 public:
  std::string_view name() const override { return "process"; }
  /// The OCI runtime becomes deckhand-process-oci, installed next to this
  /// executable, unless one other than the default runc was given.
  void configure(runtime_options& opts) const override;
  error check_container(const wire::container& c) const override;
  result<pod_shared> set_up_pod(const runtime_options& opts, const wire::pod& p,
                                const std::filesystem::path& dir, const node_allocatable& node,
                                const container_options& copts) const override;
  result<std::filesystem::path> set_up_rootfs(const std::filesystem::path& bundle,
                                              const std::filesystem::path& lower) const override;
  error join_pod(oci::bundle_spec& spec, const wire::container& c,
                 const pod_shared& shared) const override;
};

}  // namespace deckhand::runtime
