#pragma once

/// The `oci` back-end: containers through the OCI runtime (runc or crun).
/// Every pod gets network, UTS and IPC namespaces of its own (the node's
/// network with hostNetwork), an address and veth on the node bridge, a
/// /dev/shm tmpfs, /etc/{hostname,hosts,resolv.conf}, its volumes and a
/// cgroup; every container an overlay root filesystem over its image.

#include "deckhand/runtime/supervised_backend.hpp"

namespace deckhand::runtime {

class oci_backend final : public supervised_backend {
 public:
  std::string_view name() const override { return "oci"; }
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
