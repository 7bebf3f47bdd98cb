#include "deckhand/runtime/oci_backend.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "deckhand/common/process.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/net/netns.hpp"
#include "deckhand/oci/mount.hpp"
#include "deckhand/runtime/network.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "sandbox_store.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

namespace {

/// Files that need not survive a machine crash: a crash takes the pod down
/// with it, and a new sandbox writes them afresh. Skipping fsync keeps three
/// disk flushes off the pod start path.
error write_pod_file(const fs::path& file, const std::string& text) {
  auto fd = common::open_fd(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd)
    return fd.err();
  if (::write(fd->get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return error::from_errno("write " + file.string());
  return {};
}

/// Namespaces, network, /dev/shm and /etc files of pod `p` in `dir`.
result<pod_shared> set_up_pod_shared(const runtime_options& opts, const wire::pod& p,
                                     const fs::path& dir) {
  pod_shared sh;
  sh.host_network = p.spec.host_network;
  if (sh.host_network) {
    // The node's hostname, as Kubernetes gives hostNetwork pods, but in a UTS
    // namespace of the pod's own so that runc never renames the node.
    sh.hostname = node_hostname();
  } else {
    sh.hostname = p.spec.hostname.empty() ? p.metadata.name : p.spec.hostname;
    if (sh.hostname.size() > 63)
      sh.hostname.resize(63);
    sh.netns = pod_dir::netns(dir);
  }
  sh.uts_ns = sandbox_files::uts_ns(dir);
  sh.ipc_ns = sandbox_files::ipc_ns(dir);
  if (auto r = net::create_namespaces({sh.netns, sh.uts_ns, sh.ipc_ns}, sh.hostname); !r)
    return std::move(r).err();

  if (sh.host_network) {
    auto ip = node_address(opts.bridge_name);
    sh.pod_ip = ip ? ip->to_string() : "127.0.0.1";
  } else {
    auto began = std::chrono::steady_clock::now();
    auto net = pod_network::open(opts);
    if (!net)
      return std::move(net).err();
    auto att = net->attach(p.metadata.uid, sh.netns);
    if (!att)
      return std::move(att).err();
    sh.network_setup = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - began);
    sh.pod_ip = att->ip.to_string();
  }

  auto shm = sandbox_files::shm(dir);
  std::error_code ec;
  fs::create_directories(shm, ec);
  if (ec)
    return error{errc::io, "create " + shm.string() + ": " + ec.message()};
  if (!oci::is_mountpoint(shm) &&
      ::mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=1777,size=67108864") != 0)
    return error::from_errno("mount tmpfs on " + shm.string());

  auto etc = sandbox_files::etc(dir);
  fs::create_directories(etc, ec);
  if (ec)
    return error{errc::io, "create " + etc.string() + ": " + ec.message()};
  if (auto err = write_pod_file(etc / "hostname", sh.hostname + "\n"))
    return err;
  if (auto err = write_pod_file(etc / "hosts", render_hosts_file(sh.pod_ip, sh.hostname)))
    return err;
  if (auto err = write_pod_file(etc / "resolv.conf", render_resolv_conf(opts, sh.host_network)))
    return err;
  sh.mounts = {{etc / "hostname", "/etc/hostname", false},
               {etc / "hosts", "/etc/hosts", false},
               {etc / "resolv.conf", "/etc/resolv.conf", false},
               {shm, "/dev/shm", false}};
  return sh;
}

}  // namespace

void oci_backend::configure(runtime_options&) const {}

error oci_backend::check_container(const wire::container&) const { return {}; }

result<pod_shared> oci_backend::set_up_pod(const runtime_options& opts, const wire::pod& p,
                                           const fs::path& dir, const node_allocatable& node,
                                           const container_options& copts) const {
  auto sh = set_up_pod_shared(opts, p, dir);
  if (!sh)
    return sh;
  auto volumes = set_up_volumes(p, dir, node);
  if (!volumes)
    return std::move(volumes).err();
  sh->volumes = std::move(*volumes);
  if (auto err = setup_pod_cgroup(p, copts))
    return err;
  return sh;
}

result<fs::path> oci_backend::set_up_rootfs(const fs::path& bundle, const fs::path& lower) const {
  auto rootfs = bundle / "rootfs";
  if (auto r = oci::mount_overlay({lower}, bundle / "upper", bundle / "work", rootfs); !r)
    return std::move(r).err();
  return rootfs;
}

error oci_backend::join_pod(oci::bundle_spec& spec, const wire::container& c,
                            const pod_shared& sh) const {
  spec.host_network = sh.host_network;
  spec.netns_path = sh.netns;
  spec.uts_ns_path = sh.uts_ns;
  spec.ipc_ns_path = sh.ipc_ns;
  spec.hostname = sh.hostname;
  spec.mounts.insert(spec.mounts.end(), sh.mounts.begin(), sh.mounts.end());
  auto mounts = container_volume_mounts(c, sh.volumes);
  if (!mounts)
    return std::move(mounts).err();
  spec.mounts.insert(spec.mounts.end(), mounts->begin(), mounts->end());
  return {};
}

}  // namespace deckhand::runtime
