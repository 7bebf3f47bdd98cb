#include "deckhand/net/netlink.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include "deckhand/common/process.hpp"

namespace deckhand::net {

namespace fs = std::filesystem;
using common::open_fd;
using common::unique_fd;

namespace {

/// One netlink request under construction: header, family header, then
/// (possibly nested) attributes, each 4-byte aligned.
class request_builder {
 public:
  request_builder(std::uint16_t type, std::uint16_t flags) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    put(&h, sizeof h);
  }

  template <class T>
  void header(const T& t) {
    put(&t, sizeof t);
  }

  void attr(std::uint16_t type, const void* data, std::size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    put(&a, sizeof a);
    put(data, len);
  }
  void attr_str(std::uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void attr_u32(std::uint16_t type, std::uint32_t v) { attr(type, &v, sizeof v); }
  void attr_ip(std::uint16_t type, ipv4 a) {
    std::uint32_t be = htonl(a.value);
    attr(type, &be, sizeof be);
  }

  std::size_t begin_nest(std::uint16_t type) {
    std::size_t at = buf_.size();
    attr(type, nullptr, 0);
    return at;
  }
  void end_nest(std::size_t at) {
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + at);
    a->rta_len = static_cast<unsigned short>(buf_.size() - at);
  }

  std::vector<char>& finish() {
    reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
    return buf_;
  }

 private:
  void put(const void* data, std::size_t len) {
    const auto* p = static_cast<const char*>(data);
    if (len > 0)
      buf_.insert(buf_.end(), p, p + len);
    buf_.resize(NLMSG_ALIGN(buf_.size()), 0);
  }

  std::vector<char> buf_;
};

result<unique_fd> open_socket() {
  unique_fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd)
    return error::from_errno("rtnetlink: socket");
  // A kernel that never answers must not hang a sandbox worker forever.
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  // Extended acks carry the kernel's own words ("Unknown device type");
  // capped acks keep the request out of every acknowledgement.
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return error::from_errno("rtnetlink: bind");
  return fd;
}

errc code_of(int e) {
  switch (e) {
  case EEXIST: return errc::already_exists;
  case ENODEV:
  case ENOENT:
  case ESRCH: return errc::not_found;
  default: return errc::io;
  }
}

/// The extended-ack message of an NLMSG_ERROR, if the kernel attached one.
std::string ext_ack_message(const nlmsghdr* nh) {
  if (!(nh->nlmsg_flags & NLM_F_ACK_TLVS))
    return {};
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(nh));
  std::size_t off = sizeof(nlmsgerr);
  if (!(nh->nlmsg_flags & NLM_F_CAPPED))
    off += err->msg.nlmsg_len - sizeof(nlmsghdr);
  if (NLMSG_HDRLEN + off > nh->nlmsg_len)
    return {};
  const char* base = static_cast<const char*>(NLMSG_DATA(nh)) + off;
  int len = static_cast<int>(nh->nlmsg_len - NLMSG_HDRLEN - off);
  for (auto* a = reinterpret_cast<const rtattr*>(base); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == NLMSGERR_ATTR_MSG)
      return std::string(static_cast<const char*>(RTA_DATA(a)),
                         strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
  return {};
}

link_info parse_link(const nlmsghdr* nh) {
  link_info li;
  const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(nh));
  li.index = ifi->ifi_index;
  li.flags = ifi->ifi_flags;
  int len = static_cast<int>(IFLA_PAYLOAD(nh));
  for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    const char* data = static_cast<const char*>(RTA_DATA(a));
    switch (a->rta_type) {
    case IFLA_IFNAME: li.name.assign(data, strnlen(data, RTA_PAYLOAD(a))); break;
    case IFLA_IFALIAS: li.alias.assign(data, strnlen(data, RTA_PAYLOAD(a))); break;
    case IFLA_MASTER:
      if (RTA_PAYLOAD(a) >= sizeof(std::uint32_t)) {
        std::uint32_t m;
        std::memcpy(&m, data, sizeof m);
        li.master = static_cast<int>(m);
      }
      break;
    case IFLA_LINKINFO: {
      int nlen = static_cast<int>(RTA_PAYLOAD(a));
      for (auto* n = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(n, nlen);
           n = RTA_NEXT(n, nlen))
        if (n->rta_type == IFLA_INFO_KIND) {
          const char* k = static_cast<const char*>(RTA_DATA(n));
          li.kind.assign(k, strnlen(k, RTA_PAYLOAD(n)));
        }
      break;
    }
    default: break;
    }
  }
  return li;
}

constexpr std::uint16_t create_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

}  // namespace

result<rtnl> rtnl::open() {
  auto fd = open_socket();
  if (!fd)
    return std::move(fd).err();
  return rtnl(std::move(*fd));
}

result<rtnl> rtnl::open_in(const fs::path& netns) {
  auto ns = open_fd(netns, O_RDONLY);
  if (!ns)
    return std::move(ns).err();
  // setns(CLONE_NEWNET) changes only the calling thread, and a netlink socket
  // stays in the namespace it was created in: a throw-away thread gives us a
  // socket in the pod's namespace without moving any thread that lives on.
  std::optional<result<unique_fd>> out;
  try {
    std::thread t([&] {
      if (::setns(ns->get(), CLONE_NEWNET) != 0) {
        out.emplace(error::from_errno("rtnetlink: setns " + netns.string()));
        return;
      }
      out.emplace(open_socket());
    });
    t.join();
  } catch (const std::system_error& e) {
    return error{errc::io, std::string("rtnetlink: thread: ") + e.what()};
  }
  if (!*out)
    return std::move(*out).err();
  return rtnl(std::move(**out));
}

template <class F>
result<void> rtnl::transact(std::vector<char>& msg, const std::string& what, F&& on_reply) {
  auto* req = reinterpret_cast<nlmsghdr*>(msg.data());
  const std::uint32_t seq = ++seq_;
  req->nlmsg_seq = seq;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do
    sent = ::sendto(fd_.get(), msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof kernel);
  while (sent < 0 && errno == EINTR);
  if (sent < 0)
    return error::from_errno("rtnetlink: " + what + ": send");

  // Dumps come in parts of up to 32 KiB; 64 KiB holds any of them.
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return error::from_errno("rtnetlink: " + what + ": recv");
    }
    if (static_cast<std::size_t>(n) > buf.size())
      return error{errc::io, "rtnetlink: " + what + ": reply truncated"};
    int len = static_cast<int>(n);
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, len);
         nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_seq != seq)
        continue;  // a late answer to an earlier request that gave up
      if (nh->nlmsg_type == NLMSG_DONE)
        return {};
      if (nh->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nh));
        if (e->error == 0)
          return {};
        int code = -e->error;
        auto msg_text = ext_ack_message(nh);
        return error{code_of(code), "rtnetlink: " + what + ": " + std::strerror(code) +
                                        (msg_text.empty() ? "" : " (" + msg_text + ")")};
      }
      on_reply(nh);
    }
  }
}

result<void> rtnl::transact(std::vector<char>& msg, const std::string& what) {
  return transact(msg, what, [](const nlmsghdr*) {});
}

result<std::optional<link_info>> rtnl::find_link(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return std::optional<link_info>{};
  request_builder b(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  b.header(ifi);
  b.attr_str(IFLA_IFNAME, name);
  std::optional<link_info> found;
  auto r = transact(b.finish(), "get link " + name, [&](const nlmsghdr* nh) {
    if (nh->nlmsg_type == RTM_NEWLINK)
      found = parse_link(nh);
  });
  if (!r) {
    if (r.err().code == errc::not_found)
      return std::optional<link_info>{};
    return std::move(r).err();
  }
  return found;
}

result<std::vector<link_info>> rtnl::links() {
  request_builder b(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  b.header(ifi);
  std::vector<link_info> out;
  auto r = transact(b.finish(), "list links", [&](const nlmsghdr* nh) {
    if (nh->nlmsg_type == RTM_NEWLINK)
      out.push_back(parse_link(nh));
  });
  if (!r)
    return std::move(r).err();
  return out;
}

result<void> rtnl::add_bridge(const std::string& name) {
  request_builder b(RTM_NEWLINK, create_flags);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  b.header(ifi);
  b.attr_str(IFLA_IFNAME, name);
  auto info = b.begin_nest(IFLA_LINKINFO);
  b.attr_str(IFLA_INFO_KIND, "bridge");
  b.end_nest(info);
  return transact(b.finish(), "add bridge " + name);
}

result<void> rtnl::add_veth(const std::string& name, int master, const std::string& peer_name,
                            int peer_netns_fd) {
  request_builder b(RTM_NEWLINK, create_flags);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  b.header(ifi);
  b.attr_str(IFLA_IFNAME, name);
  if (master > 0)
    b.attr_u32(IFLA_MASTER, static_cast<std::uint32_t>(master));
  auto info = b.begin_nest(IFLA_LINKINFO);
  b.attr_str(IFLA_INFO_KIND, "veth");
  auto data = b.begin_nest(IFLA_INFO_DATA);
  auto peer = b.begin_nest(VETH_INFO_PEER);
  // The peer is configured before the two ends know each other, and a veth
  // without its peer refuses to come up (ENOTCONN): it is brought up later.
  ifinfomsg peer_ifi{};
  peer_ifi.ifi_family = AF_UNSPEC;
  b.header(peer_ifi);
  b.attr_str(IFLA_IFNAME, peer_name);
  if (peer_netns_fd >= 0)
    b.attr_u32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(peer_netns_fd));
  b.end_nest(peer);
  b.end_nest(data);
  b.end_nest(info);
  return transact(b.finish(), "add veth " + name);
}

result<void> rtnl::set_alias(const std::string& name, const std::string& alias) {
  constexpr std::size_t ifaliasz = 256;  // linux/if.h, which clashes with net/if.h
  if (alias.size() >= ifaliasz)
    return error{errc::invalid, "rtnetlink: alias of " + name + " is too long"};
  request_builder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  b.header(ifi);
  b.attr_str(IFLA_IFNAME, name);
  b.attr(IFLA_IFALIAS, alias.data(), alias.size());
  return transact(b.finish(), "set alias of " + name);
}

result<void> rtnl::set_up(int index) {
  request_builder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  b.header(ifi);
  return transact(b.finish(), "set link " + std::to_string(index) + " up");
}

result<void> rtnl::delete_link(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return {};
  request_builder b(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  b.header(ifi);
  b.attr_str(IFLA_IFNAME, name);
  auto r = transact(b.finish(), "delete link " + name);
  if (!r && r.err().code == errc::not_found)
    return {};
  return r;
}

result<void> rtnl::add_address(int index, ipv4 addr, int prefix) {
  request_builder b(RTM_NEWADDR, create_flags);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<unsigned>(index);
  b.header(ifa);
  b.attr_ip(IFA_LOCAL, addr);
  b.attr_ip(IFA_ADDRESS, addr);
  if (prefix < 31)
    b.attr_ip(IFA_BROADCAST,
              ipv4_cidr{{addr.value & ipv4_cidr{{}, prefix}.mask()}, prefix}.broadcast());
  auto r = transact(b.finish(), "add address " + addr.to_string() + "/" + std::to_string(prefix));
  if (!r && r.err().code == errc::already_exists)
    return {};
  return r;
}

result<void> rtnl::add_default_route(int index, ipv4 gateway) {
  request_builder b(RTM_NEWROUTE, create_flags);
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  rt.rtm_dst_len = 0;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  b.header(rt);
  b.attr_ip(RTA_GATEWAY, gateway);
  b.attr_u32(RTA_OIF, static_cast<std::uint32_t>(index));
  auto r = transact(b.finish(), "add default route via " + gateway.to_string());
  if (!r && r.err().code == errc::already_exists)
    return {};
  return r;
}

}  // namespace deckhand::net
