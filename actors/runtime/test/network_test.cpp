#define BOOST_TEST_MODULE deckhand_runtime_network
#include <boost/test/unit_test.hpp>

#include "deckhand/testing/skip.hpp"

// Pod networking against the real kernel: namespaces, a bridge, veth pairs,
// addresses, TCP between pods. Needs root. Every test uses a bridge and a
// CIDR of its own (dht<pid>, 10.201.<n>.0/24) and removes them at the end,
// also when a check failed.

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/process.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/net/netlink.hpp"
#include "deckhand/net/netns.hpp"
#include "deckhand/oci/mount.hpp"
#include "deckhand/runtime/ipam.hpp"
#include "deckhand/runtime/network.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "deckhand/runtime/sandbox_record.hpp"

using namespace deckhand;
using namespace deckhand::runtime;
using net::ipv4;
using net::ipv4_cidr;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

ipv4 ip(const char* text) {
  auto a = ipv4::parse(text);
  BOOST_REQUIRE(a);
  return *a;
}

/// Runs `fn` on a thread that has joined the network namespace at `netns`.
template <class F>
auto in_netns(const fs::path& netns, F fn) -> decltype(fn()) {
  decltype(fn()) out{};
  std::thread t([&] {
    auto fd = common::open_fd(netns, O_RDONLY);
    if (!fd || ::setns(fd->get(), CLONE_NEWNET) != 0)
      return;
    out = fn();
  });
  t.join();
  return out;
}

/// A listening TCP socket on `addr`, port chosen by the kernel.
struct listener {
  common::unique_fd fd;
  uint16_t port = 0;
};

listener listen_on(ipv4 addr) {
  listener l;
  l.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(addr.value);
  if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(l.fd.get(), 4) != 0) {
    l.fd.reset();
    return l;
  }
  socklen_t len = sizeof sa;
  ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  l.port = ntohs(sa.sin_port);
  return l;
}

/// Connects to addr:port (2 s timeout), sends `msg`; true on success.
bool send_tcp(ipv4 addr, uint16_t port, const std::string& msg) {
  common::unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{2, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(addr.value);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return false;
  return ::send(s.get(), msg.data(), msg.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size());
}

/// Accepts one connection (2 s timeout) and reads what it sends; "" on failure.
std::string accept_one(const listener& l) {
  timeval tv{2, 0};
  ::setsockopt(l.fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  common::unique_fd c(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!c)
    return {};
  ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[64];
  ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool has_link(const std::string& name) {
  auto nl = net::rtnl::open();
  BOOST_REQUIRE(nl);
  auto l = nl->find_link(name);
  BOOST_REQUIRE(l);
  return l->has_value();
}

std::vector<std::string> veths_of(const ipv4_cidr& cidr) {
  std::vector<std::string> out;
  auto nl = net::rtnl::open();
  BOOST_REQUIRE(nl);
  auto links = nl->links();
  BOOST_REQUIRE(links);
  for (const auto& l : *links)
    if (auto a = parse_host_veth_name(l.name); a && cidr.contains(*a))
      out.push_back(l.name);
  return out;
}

/// A temporary data dir, a test-only bridge and CIDR, and the removal of all
/// of it.
struct net_fixture {
  runtime_options opts;
  ipv4_cidr cidr;

  net_fixture() {
    char tmpl[] = "/tmp/deckhand-net-XXXXXX";
    opts.data_dir = mkdtemp(tmpl);
    opts.oci_runtime = "/bin/false";  // no container is ever created here
    opts.bridge_name = "dht" + std::to_string(::getpid());
    opts.pod_cidr = "10.201." + std::to_string(::getpid() % 250) + ".0/24";
    opts.resolv_conf = opts.data_dir / "node-resolv.conf";
    cidr = *ipv4_cidr::parse(opts.pod_cidr);
  }

  ~net_fixture() {
    if (auto nl = net::rtnl::open()) {
      if (auto links = nl->links())
        for (const auto& l : *links)
          if (auto a = parse_host_veth_name(l.name); a && cidr.contains(*a))
            (void)nl->delete_link(l.name);
      (void)nl->delete_link(opts.bridge_name);
    }
    for (const auto& m : mounts_under(opts.data_dir))
      (void)oci::unmount(m);
    std::error_code ec;
    fs::remove_all(opts.data_dir, ec);
  }

  pod_network open_network() {
    auto n = pod_network::open(opts);
    BOOST_REQUIRE_MESSAGE(n.ok(), (n.ok() ? std::string() : n.err().message));
    return std::move(*n);
  }

  fs::path make_netns(const std::string& name) {
    auto p = opts.data_dir / "ns" / name;
    auto r = net::create_netns(p);
    BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.err().message));
    return p;
  }

  ip_allocator open_allocator(const std::string& cidr_text) {
    auto c = ipv4_cidr::parse(cidr_text);
    BOOST_REQUIRE(c);
    auto a = ip_allocator::open(opts.data_dir / "ipam-test" / c->network.to_string(), *c);
    BOOST_REQUIRE(a);
    return std::move(*a);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(addresses)

BOOST_AUTO_TEST_CASE(parse_and_print) {
  BOOST_TEST(ip("10.88.0.5").value == 0x0a580005u);
  BOOST_TEST(ip("255.255.255.255").to_string() == "255.255.255.255");
  for (auto bad :
       {"", "10.88.0", "10.88.0.256", "10.88.0.05", "10.88.0.5.1", "a.b.c.d", "10.88.0.5 "})
    BOOST_TEST(!ipv4::parse(bad), bad);
  auto c = ipv4_cidr::parse("10.88.0.0/16");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->gateway().to_string() == "10.88.0.1");
  BOOST_TEST(c->broadcast().to_string() == "10.88.255.255");
  BOOST_TEST(c->contains(ip("10.88.3.4")));
  BOOST_TEST(!c->contains(ip("10.89.0.1")));
  BOOST_TEST(c->to_string() == "10.88.0.0/16");
  BOOST_TEST(!ipv4_cidr::parse("10.88.0.1/16"));  // host bits
  BOOST_TEST(!ipv4_cidr::parse("10.88.0.0/33"));
  BOOST_TEST(!ipv4_cidr::parse("10.88.0.0"));
  BOOST_TEST(host_veth_name(ip("10.88.0.5")) == "dh0a580005");
  BOOST_TEST(parse_host_veth_name("dh0a580005")->to_string() == "10.88.0.5");
  BOOST_TEST(!parse_host_veth_name("eth0"));
  BOOST_TEST(!parse_host_veth_name("dh0A580005"));
}

BOOST_AUTO_TEST_CASE(pod_files) {
  auto hosts = render_hosts_file("10.88.0.7", "web");
  BOOST_TEST(hosts.find("127.0.0.1\tlocalhost\n") != std::string::npos);
  BOOST_TEST(hosts.find("::1\tlocalhost ip6-localhost ip6-loopback\n") != std::string::npos);
  BOOST_TEST(hosts.find("\n10.88.0.7\tweb\n") != std::string::npos);

  net_fixture fx;
  fsutil::write_file_atomic(fx.opts.resolv_conf, "# node\nnameserver 127.0.0.53\n"
                                                 "nameserver 192.0.2.53\nsearch example.org\n"
                                                 "options edns0\n");
  auto pod = render_resolv_conf(fx.opts, false);
  BOOST_TEST(pod.find("127.0.0.53") == std::string::npos);
  BOOST_TEST(pod.find("nameserver 192.0.2.53\n") != std::string::npos);
  BOOST_TEST(pod.find("search example.org\n") != std::string::npos);
  BOOST_TEST(pod.find("options edns0\n") != std::string::npos);
  BOOST_TEST(render_resolv_conf(fx.opts, true).find("nameserver 127.0.0.53\n") !=
             std::string::npos);
  fx.opts.dns_nameservers = {"10.96.0.10"};
  fx.opts.dns_searches = {"default.svc.cluster.local", "svc.cluster.local"};
  BOOST_TEST(render_resolv_conf(fx.opts, false) ==
             "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(allocator)

BOOST_AUTO_TEST_CASE(skips_reserved_and_is_idempotent_and_durable) {
  net_fixture fx;
  std::set<std::string> got;
  {
    auto a = fx.open_allocator("10.9.0.0/29");  // .0 network, .1 gateway, .7 broadcast
    for (int i = 0; i < 5; ++i) {
      auto r = a.allocate("pod-" + std::to_string(i));
      BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.err().message));
      got.insert(r->to_string());
    }
    auto again = a.allocate("pod-3");
    BOOST_REQUIRE(again);
    BOOST_TEST(a.lookup("pod-3")->to_string() == again->to_string());
    auto full = a.allocate("pod-5");
    BOOST_REQUIRE(!full);
    BOOST_TEST((full.err().code == errc::unavailable));
  }
  BOOST_TEST(
      (got == std::set<std::string>{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}));

  // A new allocator on the same directory (a restarted runtime) sees it all.
  auto b = fx.open_allocator("10.9.0.0/29");
  BOOST_TEST(b.allocations().size() == 5u);
  auto before = b.lookup("pod-2");
  BOOST_REQUIRE(before);
  BOOST_TEST(b.allocate("pod-2")->to_string() == before->to_string());
  BOOST_TEST(!b.release("pod-2"));
  BOOST_TEST(!b.lookup("pod-2"));
  BOOST_TEST(!b.release("pod-2"));  // idempotent
  auto reused = b.allocate("pod-9");
  BOOST_REQUIRE(reused);
  BOOST_TEST(reused->to_string() == before->to_string());
  BOOST_TEST(b.allocations().size() == 5u);

  BOOST_TEST(!ip_allocator::open(fx.opts.data_dir / "x", *ipv4_cidr::parse("10.9.0.0/31")));
}

BOOST_AUTO_TEST_CASE(released_address_is_not_handed_out_next) {
  net_fixture fx;
  auto a = fx.open_allocator("10.9.1.0/24");
  auto first = a.allocate("a");
  BOOST_REQUIRE(first);
  BOOST_TEST(!a.release("a"));
  auto second = a.allocate("b");
  BOOST_REQUIRE(second);
  BOOST_TEST(second->to_string() != first->to_string());
}

BOOST_AUTO_TEST_CASE(no_double_allocation_under_concurrency) {
  net_fixture fx;
  constexpr int threads = 4;
  constexpr int per_thread = 12;
  std::vector<std::vector<std::string>> results(threads);
  std::vector<std::string> same_uid(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      // An allocator per thread, as separate processes would have.
      auto a = ip_allocator::open(fx.opts.data_dir / "ipam-test" / "c",
                                  *ipv4_cidr::parse("10.9.2.0/26"));
      if (!a)
        return;
      if (auto r = a->allocate("shared-uid"))
        same_uid[static_cast<std::size_t>(t)] = r->to_string();
      for (int i = 0; i < per_thread; ++i)
        if (auto r = a->allocate("t" + std::to_string(t) + "-" + std::to_string(i)))
          results[static_cast<std::size_t>(t)].push_back(r->to_string());
    });
  for (auto& w : workers)
    w.join();
  std::set<std::string> all;
  std::size_t total = 0;
  for (const auto& r : results) {
    total += r.size();
    all.insert(r.begin(), r.end());
  }
  BOOST_TEST(total == static_cast<std::size_t>(threads * per_thread));
  BOOST_TEST(all.size() == total);  // no address twice
  for (const auto& s : same_uid)
    BOOST_TEST(s == same_uid[0]);  // one uid, one address
  BOOST_TEST(!all.count(same_uid[0]));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(pod_networking, *deckhand::testing::skip_unless(deckhand::testing::root()))

BOOST_AUTO_TEST_CASE(shared_namespaces_have_the_hostname) {
  net_fixture fx;
  auto dir = fx.opts.data_dir / "pod";
  net::namespace_files files{dir / "netns", dir / "utsns", dir / "ipcns"};
  auto r = net::create_namespaces(files, "web-0");
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.err().message));
  for (const auto& f : {files.net, files.uts, files.ipc})
    BOOST_TEST(net::is_netns_mount(f));
  struct stat self {
  }, pod{};
  ::stat("/proc/self/ns/uts", &self);
  ::stat(files.uts.c_str(), &pod);
  BOOST_TEST(self.st_ino != pod.st_ino);  // the caller stayed where it was
  std::string name;
  std::thread t([&] {
    auto fd = common::open_fd(files.uts, O_RDONLY);
    if (fd && ::setns(fd->get(), CLONE_NEWUTS) == 0) {
      char buf[65] = {};
      ::gethostname(buf, 64);
      name = buf;
    }
  });
  t.join();
  BOOST_TEST(name == "web-0");
  // Idempotent: the same namespaces are kept.
  BOOST_TEST(net::create_namespaces(files, "other").ok());
  struct stat again {};
  ::stat(files.uts.c_str(), &again);
  BOOST_TEST(again.st_ino == pod.st_ino);
  for (const auto& f : {files.net, files.uts, files.ipc}) {
    BOOST_TEST(net::remove_netns(f).ok());
    BOOST_TEST(!fs::exists(f));
  }
}

BOOST_AUTO_TEST_CASE(two_pods_talk_to_each_other_and_to_the_node) {
  net_fixture fx;
  auto net = fx.open_network();
  auto ns_a = fx.make_netns("a");
  auto ns_b = fx.make_netns("b");

  auto began = std::chrono::steady_clock::now();
  auto a = net.attach("uid-a", ns_a);
  auto setup_a = std::chrono::steady_clock::now() - began;
  BOOST_REQUIRE_MESSAGE(a.ok(), (a.ok() ? std::string() : a.err().message));
  began = std::chrono::steady_clock::now();
  auto b = net.attach("uid-b", ns_b);
  auto setup_b = std::chrono::steady_clock::now() - began;
  BOOST_REQUIRE_MESSAGE(b.ok(), (b.ok() ? std::string() : b.err().message));
  BOOST_TEST_MESSAGE("attach: first pod (creates the bridge) "
                     << std::chrono::duration_cast<std::chrono::microseconds>(setup_a).count()
                     << " us, second pod "
                     << std::chrono::duration_cast<std::chrono::microseconds>(setup_b).count()
                     << " us");

  BOOST_TEST(a->ip.to_string() != b->ip.to_string());
  BOOST_TEST(fx.cidr.contains(a->ip));
  BOOST_TEST(fx.cidr.contains(b->ip));
  BOOST_TEST(a->gateway.to_string() == fx.cidr.gateway().to_string());

  // The host ends hang on the bridge, up.
  auto nl = net::rtnl::open();
  BOOST_REQUIRE(nl);
  auto br = nl->find_link(fx.opts.bridge_name);
  BOOST_REQUIRE(br);
  BOOST_REQUIRE(br->has_value());
  BOOST_TEST((*br)->kind == "bridge");
  for (const auto& att : {*a, *b}) {
    auto veth = nl->find_link(att.host_veth);
    BOOST_REQUIRE(veth);
    BOOST_REQUIRE(veth->has_value());
    BOOST_TEST((*veth)->master == (*br)->index);
    BOOST_TEST(((*veth)->flags & IFF_UP) != 0u);
  }
  // Inside: eth0 and lo, both up.
  auto inside = net::rtnl::open_in(ns_a);
  BOOST_REQUIRE(inside);
  auto links = inside->links();
  BOOST_REQUIRE(links);
  std::set<std::string> names;
  for (const auto& l : *links) {
    names.insert(l.name);
    BOOST_TEST((l.flags & IFF_UP) != 0u, l.name);
  }
  BOOST_TEST((names == std::set<std::string>{"lo", "eth0"}));

  // Pod A to pod B.
  auto lb = in_netns(ns_b, [&] { return std::make_shared<listener>(listen_on(b->ip)); });
  BOOST_REQUIRE(lb);
  BOOST_REQUIRE(lb->fd);
  std::string got_b;
  std::thread server_b([&] { got_b = accept_one(*lb); });
  bool sent = in_netns(ns_a, [&] { return send_tcp(b->ip, lb->port, "a-to-b"); });
  server_b.join();
  BOOST_TEST(sent);
  BOOST_TEST(got_b == "a-to-b");

  // Pod A to the node (the gateway address on the bridge).
  auto ln = listen_on(fx.cidr.gateway());
  BOOST_REQUIRE(ln.fd);
  std::string got_node;
  std::thread server_n([&] { got_node = accept_one(ln); });
  sent = in_netns(ns_a, [&] { return send_tcp(fx.cidr.gateway(), ln.port, "a-to-node"); });
  server_n.join();
  BOOST_TEST(sent);
  BOOST_TEST(got_node == "a-to-node");

  // And the node to pod B.
  auto lb2 = in_netns(ns_b, [&] { return std::make_shared<listener>(listen_on(b->ip)); });
  std::string got_b2;
  std::thread server_b2([&] { got_b2 = accept_one(*lb2); });
  BOOST_TEST(send_tcp(b->ip, lb2->port, "node-to-b"));
  server_b2.join();
  BOOST_TEST(got_b2 == "node-to-b");

  // Teardown leaves no veth, no address, no namespace.
  BOOST_TEST(!net.detach("uid-a"));
  BOOST_TEST(!net.detach("uid-b"));
  BOOST_TEST(!net.detach("uid-b"));  // idempotent
  BOOST_TEST(!has_link(a->host_veth));
  BOOST_TEST(!has_link(b->host_veth));
  BOOST_TEST(net.allocator().allocations().empty());
  BOOST_TEST(net::remove_netns(ns_a).ok());
  BOOST_TEST(net::remove_netns(ns_b).ok());
  BOOST_TEST(mounts_under(fx.opts.data_dir).empty());
}

BOOST_AUTO_TEST_CASE(per_pod_setup_cost) {
  net_fixture fx;
  auto net = fx.open_network();
  BOOST_REQUIRE(net.ensure_bridge().ok());
  constexpr int pods = 20;
  std::vector<long> ns_us, attach_us, detach_us;
  for (int i = 0; i < pods; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto ns = fx.make_netns("p" + std::to_string(i));
    auto t1 = std::chrono::steady_clock::now();
    auto att = net.attach("uid-" + std::to_string(i), ns);
    auto t2 = std::chrono::steady_clock::now();
    BOOST_REQUIRE_MESSAGE(att.ok(), (att.ok() ? std::string() : att.err().message));
    BOOST_TEST(!net.detach("uid-" + std::to_string(i)));
    auto t3 = std::chrono::steady_clock::now();
    BOOST_TEST(net::remove_netns(ns).ok());
    auto us = [](auto d) {
      return static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    };
    ns_us.push_back(us(t1 - t0));
    attach_us.push_back(us(t2 - t1));
    detach_us.push_back(us(t3 - t2));
  }
  auto median = [](std::vector<long> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto worst = [](const std::vector<long>& v) { return *std::max_element(v.begin(), v.end()); };
  BOOST_TEST_MESSAGE("per pod, median/max over "
                     << pods << ": namespaces " << median(ns_us) << "/" << worst(ns_us)
                     << " us, attach " << median(attach_us) << "/" << worst(attach_us)
                     << " us, detach " << median(detach_us) << "/" << worst(detach_us) << " us");
  BOOST_TEST(veths_of(fx.cidr).empty());
}

BOOST_AUTO_TEST_CASE(sweep_removes_orphans_and_keeps_live_pods) {
  net_fixture fx;
  auto net = fx.open_network();
  auto ns_live = fx.make_netns("live");
  auto ns_dead = fx.make_netns("dead");
  auto live = net.attach("uid-live", ns_live);
  auto dead = net.attach("uid-dead", ns_dead);
  BOOST_REQUIRE(live);
  BOOST_REQUIRE(dead);
  // A veth named after an address nobody holds (a crash between veth
  // creation and the allocation's fsync is impossible, but a lost state dir
  // is not).
  auto stray_ip = ipv4{fx.cidr.gateway().value + 100};
  auto ns_stray = fx.make_netns("stray");
  {
    auto nl = net::rtnl::open();
    BOOST_REQUIRE(nl);
    auto fd = common::open_fd(ns_stray, O_RDONLY);
    BOOST_REQUIRE(fd);
    BOOST_REQUIRE(nl->add_veth(host_veth_name(stray_ip), 0, "eth0", fd->get()).ok());
    BOOST_REQUIRE(nl->set_alias(host_veth_name(stray_ip), net.veth_alias("uid-lost")).ok());
  }
  // Another runtime's veth in the same CIDR (a different data dir) is left alone.
  auto foreign_ip = ipv4{fx.cidr.gateway().value + 101};
  auto ns_foreign = fx.make_netns("foreign");
  {
    auto nl = net::rtnl::open();
    BOOST_REQUIRE(nl);
    auto fd = common::open_fd(ns_foreign, O_RDONLY);
    BOOST_REQUIRE(fd);
    BOOST_REQUIRE(nl->add_veth(host_veth_name(foreign_ip), 0, "eth0", fd->get()).ok());
    BOOST_REQUIRE(nl->set_alias(host_veth_name(foreign_ip), "deckhand:0000000000000000:x").ok());
  }
  BOOST_TEST(veths_of(fx.cidr).size() == 4u);

  auto rep = net.sweep({"uid-live"});
  BOOST_TEST(rep.released_ips == 1);
  BOOST_TEST(rep.deleted_veths == 1);
  auto left = veths_of(fx.cidr);
  std::sort(left.begin(), left.end());
  auto expected = std::vector<std::string>{live->host_veth, host_veth_name(foreign_ip)};
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(left == expected, boost::test_tools::per_element());
  {
    auto nl = net::rtnl::open();
    BOOST_REQUIRE(nl);
    auto l = nl->find_link(live->host_veth);
    BOOST_REQUIRE(l);
    BOOST_REQUIRE(l->has_value());
    BOOST_TEST((*l)->alias == net.veth_alias("uid-live"));
  }
  auto allocs = net.allocator().allocations();
  BOOST_REQUIRE_EQUAL(allocs.size(), 1u);
  BOOST_TEST(allocs[0].second == "uid-live");
}

// A sandbox that the runtime was building when it died: its directory says
// "creating", its namespaces are mounted, its veth and address exist. The
// start-up recovery removes all of it.
BOOST_AUTO_TEST_CASE(recovery_removes_half_created_sandbox) {
  net_fixture fx;
  const std::string uid = "uid-half";
  auto dir = pod_dir::root(fx.opts.data_dir, uid);
  fs::create_directories(dir);
  wire::pod p;
  p.metadata.uid = uid;
  p.metadata.name = "half";
  fsutil::write_file_atomic(pod_dir::pod_json(dir), wire::to_json(p).dump());
  sandbox_record rec;
  rec.uid = uid;
  rec.name = "half";
  rec.state = "creating";
  fsutil::write_file_atomic(pod_dir::sandbox_json(dir), encode_sandbox_record(rec));
  auto ns = net::create_namespaces(
      {pod_dir::netns(dir), sandbox_files::uts_ns(dir), sandbox_files::ipc_ns(dir)}, "half");
  BOOST_REQUIRE(ns);
  auto net = fx.open_network();
  auto att = net.attach(uid, pod_dir::netns(dir));
  BOOST_REQUIRE(att);
  // And a stray namespace mount under the pods dir that no pod owns.
  auto stray = paths::pods_state_dir(fx.opts.data_dir) / "gone-uid" / "netns";
  BOOST_REQUIRE(net::create_netns(stray));
  BOOST_TEST(mounts_under(fx.opts.data_dir).size() == 4u);

  auto found = recover_sandboxes(fx.opts);
  BOOST_TEST(found.empty());
  BOOST_TEST(!fs::exists(dir));
  BOOST_TEST(!has_link(att->host_veth));
  BOOST_TEST(net.allocator().allocations().empty());
  BOOST_TEST(mounts_under(fx.opts.data_dir).empty());
}

BOOST_AUTO_TEST_CASE(node_address_is_not_loopback) {
  auto a = node_address("");
  BOOST_REQUIRE(a);
  BOOST_TEST((a->value >> 24) != 127u);
}

BOOST_AUTO_TEST_SUITE_END()
