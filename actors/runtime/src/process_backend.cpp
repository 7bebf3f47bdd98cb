#include "deckhand/runtime/process_backend.hpp"

#include "deckhand/runtime/network.hpp"
#include "sandbox_store.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

void process_backend::configure(runtime_options& opts) const {
  if (opts.oci_runtime != "runc")
    return;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  opts.oci_runtime = ec ? std::string("deckhand-process-oci")
                        : (self.parent_path() / "deckhand-process-oci").string();
}

error process_backend::check_container(const wire::container& c) const {
  if (c.volume_mounts.empty())
    return {};
  return {errc::unsupported,
          "volumes are not supported by the process backend (no mount namespace): "
          "container \"" +
              c.name + "\" mounts volume \"" + c.volume_mounts.front().name + "\""};
}

result<pod_shared> process_backend::set_up_pod(const runtime_options& opts, const wire::pod&,
                                               const fs::path&, const node_allocatable&,
                                               const container_options&) const {
  // None of a pod's own namespaces, mounts or interfaces is possible without
  // privileges: the processes share the node's network and /etc files.
  pod_shared sh;
  sh.host_network = true;
  sh.hostname = node_hostname();
  auto ip = node_address(opts.bridge_name);
  sh.pod_ip = ip ? ip->to_string() : "127.0.0.1";
  return sh;
}

result<fs::path> process_backend::set_up_rootfs(const fs::path& bundle,
                                                const fs::path& lower) const {
  // The bundle points at the image's unpacked rootfs, which
  // deckhand-process-oci never reads or writes; the bundle still records the
  // process.
  std::error_code ec;
  fs::create_directories(bundle, ec);
  return lower;
}

error process_backend::join_pod(oci::bundle_spec& spec, const wire::container&,
                                const pod_shared&) const {
  spec.host_network = true;
  spec.cgroups_path.reset();
  return {};
}

}  // namespace deckhand::runtime
