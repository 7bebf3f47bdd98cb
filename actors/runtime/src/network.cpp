#include "deckhand/runtime/network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>

#include "deckhand/common/log.hpp"
#include "deckhand/common/process.hpp"
#include "deckhand/net/netlink.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;
using net::ipv4;

namespace {

constexpr const char* pod_ifname = "eth0";

error write_sysctl(const fs::path& file, const std::string& value) {
  auto fd = common::open_fd(file, O_WRONLY | O_TRUNC);
  if (!fd)
    return fd.err();
  if (::write(fd->get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return error::from_errno("write " + file.string());
  return {};
}

}  // namespace

std::string host_veth_name(ipv4 ip) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "dh%08x", ip.value);
  return buf;
}

std::optional<ipv4> parse_host_veth_name(const std::string& name) {
  if (name.size() != 10 || name.compare(0, 2, "dh") != 0)
    return std::nullopt;
  std::uint32_t v = 0;
  for (std::size_t i = 2; i < name.size(); ++i) {
    char c = name[i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = static_cast<unsigned>(c - 'a' + 10);
    else
      return std::nullopt;
    v = (v << 4) | d;
  }
  return ipv4{v};
}

std::optional<ipv4> node_address(const std::string& except_bridge) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0)
    return std::nullopt;
  std::optional<ipv4> found;
  for (auto* a = list; a && !found; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET)
      continue;
    if ((a->ifa_flags & IFF_LOOPBACK) || !(a->ifa_flags & IFF_UP))
      continue;
    if (a->ifa_name && except_bridge == a->ifa_name)
      continue;
    const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    found = ipv4{ntohl(sin->sin_addr.s_addr)};
  }
  ::freeifaddrs(list);
  return found;
}

result<pod_network> pod_network::open(const runtime_options& opts) {
  auto cidr = net::ipv4_cidr::parse(opts.pod_cidr);
  if (!cidr)
    return std::move(cidr).err();
  if (opts.bridge_name.empty() || opts.bridge_name.size() >= IFNAMSIZ ||
      opts.bridge_name.find('/') != std::string::npos)
    return error{errc::invalid, "bridge name \"" + opts.bridge_name +
                                    "\" is not a usable interface name (1-15 characters)"};
  auto alloc = ip_allocator::open(ipam_dir(opts.data_dir, *cidr), *cidr);
  if (!alloc)
    return std::move(alloc).err();
  // FNV-1a of the data dir: short enough for an alias, stable across restarts.
  std::error_code ec;
  auto dd = fs::weakly_canonical(opts.data_dir, ec);
  std::string key = (ec ? opts.data_dir : dd).string();
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key)
    h = (h ^ c) * 1099511628211ull;
  char owner[40];
  std::snprintf(owner, sizeof owner, "deckhand:%016llx:", static_cast<unsigned long long>(h));
  return pod_network(opts.bridge_name, std::move(*alloc), owner);
}

bool pod_network::ours_or_unmarked(const std::string& alias) const {
  return alias.empty() || alias.compare(0, owner_.size(), owner_) == 0;
}

result<int> pod_network::ensure_bridge() {
  auto nl = net::rtnl::open();
  if (!nl)
    return std::move(nl).err();
  auto br = nl->find_link(bridge_);
  if (!br)
    return std::move(br).err();
  if (!*br) {
    // Two runtimes racing here both succeed: the loser sees EEXIST.
    if (auto r = nl->add_bridge(bridge_); !r && r.err().code != errc::already_exists)
      return std::move(r).err();
    br = nl->find_link(bridge_);
    if (!br)
      return std::move(br).err();
    if (!*br)
      return error{errc::io, "bridge " + bridge_ + " vanished right after its creation"};
  }
  const auto& link = **br;
  if (link.kind != "bridge")
    return error{errc::invalid, "interface " + bridge_ + " exists but is a " +
                                    (link.kind.empty() ? std::string("plain device") : link.kind) +
                                    ", not a bridge"};
  if (!(link.flags & IFF_UP))
    if (auto r = nl->set_up(link.index); !r)
      return std::move(r).err();
  const auto& cidr = alloc_.cidr();
  if (auto r = nl->add_address(link.index, cidr.gateway(), cidr.prefix); !r)
    return std::move(r).err();
  if (auto err = write_sysctl("/proc/sys/net/ipv4/conf/" + bridge_ + "/forwarding", "1"))
    return err;
  return link.index;
}

result<pod_attachment> pod_network::attach(const std::string& uid, const fs::path& netns) {
  auto ip = alloc_.allocate(uid);
  if (!ip)
    return std::move(ip).err();
  pod_attachment out;
  out.ip = *ip;
  out.prefix = alloc_.cidr().prefix;
  out.gateway = alloc_.cidr().gateway();
  out.host_veth = host_veth_name(*ip);

  auto undo = [&](error err) -> result<pod_attachment> {
    if (auto nl = net::rtnl::open())
      (void)nl->delete_link(out.host_veth);
    (void)alloc_.release(uid);
    return err;
  };

  auto br = ensure_bridge();
  if (!br)
    return undo(std::move(br).err());
  auto nsfd = common::open_fd(netns, O_RDONLY);
  if (!nsfd)
    return undo(std::move(nsfd).err());
  auto host = net::rtnl::open();
  if (!host)
    return undo(std::move(host).err());
  auto made = host->add_veth(out.host_veth, *br, pod_ifname, nsfd->get());
  if (!made && made.err().code == errc::already_exists) {
    // Left by a pod that held this address and died before its cleanup,
    // unless another runtime on this host uses the same CIDR.
    auto old = host->find_link(out.host_veth);
    if (old && *old && !ours_or_unmarked((*old)->alias))
      return undo(error{errc::conflict, "interface " + out.host_veth + " belongs to \"" +
                                            (*old)->alias + "\": another runtime uses pod CIDR " +
                                            alloc_.cidr().to_string() + " on this host"});
    (void)host->delete_link(out.host_veth);
    made = host->add_veth(out.host_veth, *br, pod_ifname, nsfd->get());
  }
  if (!made)
    return undo(std::move(made).err());
  if (auto r = host->set_alias(out.host_veth, veth_alias(uid)); !r)
    return undo(std::move(r).err());
  // Hairpin: a pod that reaches a Service and is DNATed to itself sends the
  // packet back out of the port it came in on (as the kubelet's CNI bridge
  // plugin sets up). Without it the bridge drops such packets.
  {
    auto path = "/sys/class/net/" + out.host_veth + "/brport/hairpin_mode";
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "1", 1) != 1)
      log::get()->warn("msg=\"cannot enable hairpin mode\" veth={} errno={}", out.host_veth, errno);
    if (fd >= 0)
      ::close(fd);
  }

  auto pod = net::rtnl::open_in(netns);
  if (!pod)
    return undo(std::move(pod).err());
  auto eth0 = pod->find_link(pod_ifname);
  if (!eth0)
    return undo(std::move(eth0).err());
  if (!*eth0)
    return undo(error{errc::io, std::string(pod_ifname) + " did not appear in " + netns.string()});
  if (auto r = pod->set_up((*eth0)->index); !r)
    return undo(std::move(r).err());
  if (auto r = pod->add_address((*eth0)->index, out.ip, out.prefix); !r)
    return undo(std::move(r).err());
  if (auto r = pod->add_default_route((*eth0)->index, out.gateway); !r)
    return undo(std::move(r).err());
  return out;
}

error pod_network::detach(const std::string& uid) {
  auto ip = alloc_.lookup(uid);
  if (!ip)
    return {};
  auto nl = net::rtnl::open();
  if (!nl)
    return std::move(nl).err();
  // The address stays allocated while its veth may still exist, so that no
  // new pod is wired next to a stale interface of the same name.
  if (auto r = nl->delete_link(host_veth_name(*ip)); !r)
    return std::move(r).err();
  return alloc_.release(uid);
}

network_sweep_report pod_network::sweep(const std::set<std::string>& live) {
  network_sweep_report rep;
  auto lg = log::get();
  std::set<std::string> keep;
  for (const auto& [ip, uid] : alloc_.allocations()) {
    if (live.count(uid)) {
      keep.insert(host_veth_name(ip));
      continue;
    }
    if (auto err = detach(uid)) {
      lg->warn("msg=\"orphan address not released\" uid={} ip={} error=\"{}\"", uid, ip.to_string(),
               err.message);
      continue;
    }
    lg->info("msg=\"released orphan address\" uid={} ip={}", uid, ip.to_string());
    ++rep.released_ips;
  }
  auto nl = net::rtnl::open();
  if (!nl)
    return rep;
  auto links = nl->links();
  if (!links)
    return rep;
  for (const auto& l : *links) {
    auto ip = parse_host_veth_name(l.name);
    if (!ip || !alloc_.cidr().contains(*ip) || keep.count(l.name) || l.alias.empty() ||
        !ours_or_unmarked(l.alias))
      continue;
    if (auto r = nl->delete_link(l.name); !r) {
      lg->warn("msg=\"orphan veth not deleted\" veth={} error=\"{}\"", l.name, r.err().message);
      continue;
    }
    lg->info("msg=\"deleted orphan veth\" veth={}", l.name);
    ++rep.deleted_veths;
  }
  return rep;
}

}  // namespace deckhand::runtime
