#pragma once

/// What the two back-ends whose pods are real processes under a pod
/// supervisor (oci, process) share: recovery from disk, the sandbox and
/// container services, and the sandbox layout built by create_sandbox().
/// They differ only in how a pod is isolated on the host, the hooks below.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "deckhand/oci/bundle.hpp"
#include "deckhand/runtime/container_process.hpp"
#include "deckhand/runtime/sandbox_backend.hpp"
#include "deckhand/runtime/volumes.hpp"

namespace deckhand::runtime {

/// What every container of a pod shares, once set up.
struct pod_shared {
  std::string pod_ip;
  std::string hostname;
  bool host_network = false;
  std::filesystem::path netns;
  std::filesystem::path uts_ns;
  std::filesystem::path ipc_ns;
  /// /etc files and /dev/shm, bind-mounted in every container.
  std::vector<oci::bind_mount> mounts;
  /// The pod's volumes, by name.
  volume_paths volumes;
  std::chrono::microseconds network_setup{0};
};

class supervised_backend : public sandbox_backend {
 public:
  bool runs_supervisors() const override { return true; }
  std::vector<recovered_pod> recover(const runtime_options& opts) const override;
  backend_actors spawn(caf::actor_system& sys, transport::bridge& bus, const runtime_options& opts,
                       std::shared_ptr<image::image_store> images,
                       caf::actor supervisors) const override;

  /// Refuses a container this back-end cannot run, before anything is
  /// created.
  virtual error check_container(const wire::container& c) const = 0;

  /// What the pod's containers share, in the pod directory `dir`:
  /// namespaces, address, /etc files, volumes, the pod's cgroup. Everything
  /// it creates lives under `dir` or is found by pod uid, so remove_sandbox()
  /// undoes a partial run.
  virtual result<pod_shared> set_up_pod(const runtime_options& opts, const wire::pod& p,
                                        const std::filesystem::path& dir,
                                        const node_allocatable& node,
                                        const container_options& copts) const = 0;

  /// The root filesystem of the container whose bundle is `bundle`, over the
  /// image's unpacked `lower` layer.
  virtual result<std::filesystem::path> set_up_rootfs(const std::filesystem::path& bundle,
                                                      const std::filesystem::path& lower) const = 0;

  /// Makes container `c`'s spec join what its pod shares.
  virtual error join_pod(oci::bundle_spec& spec, const wire::container& c,
                         const pod_shared& shared) const = 0;
};

}  // namespace deckhand::runtime
