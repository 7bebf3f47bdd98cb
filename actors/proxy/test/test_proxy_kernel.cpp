#define BOOST_TEST_MODULE deckhand_proxy_kernel
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "deckhand/proxy/command.hpp"
#include "deckhand/proxy/iptables.hpp"
#include "deckhand/proxy/kernel.hpp"
#include "deckhand/proxy/nftables.hpp"

using namespace deckhand;
using namespace deckhand::proxy;
using namespace std::chrono_literals;

namespace {

backend be(const std::string& ip, int port, bool ready = true) {
  backend b;
  b.ip = ip;
  b.port = port;
  b.ready = ready;
  b.serving = ready;
  return b;
}

service_port_entry entry(const std::string& name, const std::string& proto, const std::string& cip,
                         int port, std::vector<backend> bs, int node_port = 0,
                         bool affinity = false) {
  service_port_entry e;
  e.namespace_ = "default";
  e.service = name;
  e.port_name = "p";
  e.protocol = proto;
  e.cluster_ip = cip;
  e.port = port;
  e.node_port = node_port;
  e.affinity_client_ip = affinity;
  e.affinity_timeout_seconds = affinity ? 60 : 10800;
  e.backends = std::move(bs);
  std::sort(e.backends.begin(), e.backends.end());
  return e;
}

service_map map_of(std::vector<service_port_entry> es) {
  service_map m;
  m.entries = std::move(es);
  std::sort(m.entries.begin(), m.entries.end(),
            [](const auto& a, const auto& b) { return a.key() < b.key(); });
  return m;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
    ++n;
  return n;
}

}  // namespace

// -- rendering ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(render)

BOOST_AUTO_TEST_CASE(stable_hashes_are_base32_and_fit_iptables_names) {
  auto h = stable_hash("default/web:http/TCP");
  BOOST_TEST(h.size() == 14u);
  BOOST_TEST(h == stable_hash("default/web:http/TCP"));
  BOOST_TEST(h != stable_hash("default/web:http/UDP"));
  for (char c : h)
    BOOST_TEST(((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')));
  BOOST_TEST(std::string("DECKHAND-SEP-" + h).size() <= 28u);
}

BOOST_AUTO_TEST_CASE(nftables_full_sync_has_maps_numgen_affinity_and_reject) {
  auto m = map_of({
      entry("web", "TCP", "10.96.0.10", 80,
            {be("10.88.0.5", 8080), be("10.88.0.6", 8080), be("10.88.0.7", 8080, false)}, 30080),
      entry("sticky", "TCP", "10.96.0.11", 80, {be("10.88.0.5", 8080)}, 0, true),
      entry("empty", "UDP", "10.96.0.12", 53, {}, 30053),
  });
  kernel_options o;
  auto t = render_nftables(m, nullptr, {}, o);
  BOOST_TEST(contains(t, "add table ip deckhand-proxy"));
  // Full: flush the table (sets, so affinity entries, survive) and redefine
  // every chain in one declarative block.
  BOOST_TEST(contains(t, "flush table ip deckhand-proxy\n"));
  BOOST_TEST(contains(t, "table ip deckhand-proxy {\n"));
  BOOST_TEST(
      contains(t, "  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }"));
  BOOST_TEST(
      contains(t, "type nat hook prerouting priority dstnat; policy accept;\n    jump services\n"));
  BOOST_TEST(!contains(t, "add rule"));
  BOOST_TEST(contains(t, "ip daddr . meta l4proto . th dport vmap @service-ips"));
  BOOST_TEST(contains(t, "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport "
                         "vmap @service-nodeports"));
  // Two ready backends of three: numgen over two, straight into DNAT; no
  // chain per endpoint (only the affinity Service has one).
  BOOST_TEST(contains(t, "meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { "
                         "0 : 10.88.0.5 . 8080, 1 : 10.88.0.6 . 8080 }"));
  BOOST_TEST(count(t, "chain ep-") == 1u);
  BOOST_TEST(contains(t, "dnat to 10.88.0.5:8080"));
  BOOST_TEST(!contains(t, "10.88.0.7"));
  // Hairpin: one set of (ip . ip) of the usable endpoints.
  BOOST_TEST(contains(t, "ct status dnat ip saddr . ip daddr @hairpin-ips masquerade"));
  BOOST_TEST(contains(t, "add element ip deckhand-proxy hairpin-ips { 10.88.0.5 . 10.88.0.5, "
                         "10.88.0.6 . 10.88.0.6 }"));
  BOOST_TEST(contains(t, "10.96.0.10 . tcp . 80 : goto svc-"));
  BOOST_TEST(contains(t, "tcp . 30080 : goto ext-"));
  BOOST_TEST(contains(t, "ip saddr != 10.88.0.0/16 jump mark-for-masquerade"));
  // Affinity: a timed dynamic set per endpoint, looked up before the choice.
  BOOST_TEST(contains(t, "type ipv4_addr; flags dynamic,timeout; timeout 60s;"));
  BOOST_TEST(contains(t, "update @aff-"));
  auto lookup = t.find("ip saddr @aff-");
  BOOST_TEST(lookup != std::string::npos);
  BOOST_TEST(lookup < t.find("numgen random mod 1"));
  // No endpoints: reject, from the no-endpoint maps, for the ClusterIP and the NodePort.
  BOOST_TEST(contains(t, "10.96.0.12 . udp . 53 : goto reject-chain"));
  BOOST_TEST(contains(t, "udp . 30053 : goto reject-chain"));
  BOOST_TEST(contains(t, "reject with tcp reset"));
  BOOST_TEST(!contains(t, "delete chain"));
}

BOOST_AUTO_TEST_CASE(nftables_incremental_sync_touches_only_the_changed_service) {
  auto a = entry("a", "TCP", "10.96.0.10", 80, {be("10.88.0.5", 8080), be("10.88.0.6", 8080)});
  auto b = entry("b", "TCP", "10.96.0.11", 80, {be("10.88.0.8", 8080)}, 0, true);
  auto before = map_of({a, b});
  auto b2 = b;
  b2.backends = {be("10.88.0.9", 8080)};
  auto after = map_of({a, b2});
  kernel_options o;
  auto t = render_nftables(after, &before, {}, o);
  BOOST_TEST(!contains(t, "10.88.0.5 . 8080"));  // a untouched
  BOOST_TEST(!contains(t, "flush table"));
  BOOST_TEST(!contains(t, "flush chain ip deckhand-proxy svc-" + stable_hash(entry_id(a))));
  BOOST_TEST(contains(t, "flush chain ip deckhand-proxy svc-" + stable_hash(entry_id(b))));
  BOOST_TEST(contains(t, "dnat to 10.88.0.9:8080"));
  // b's old endpoint chain and affinity set; nothing else.
  BOOST_TEST(count(t, "delete chain") == 1u);
  BOOST_TEST(count(t, "delete set") == 1u);
  BOOST_TEST(contains(t, "10.96.0.10 . tcp . 80 : goto svc-"));  // maps refilled whole
  // A full sync deletes strays found in the kernel and keeps what is wanted.
  nft_objects existing;
  existing.table = true;
  existing.chains = {"services", "svc-STRAY", "svc-" + stable_hash(entry_id(a))};
  existing.sets = {"aff-OLD"};
  auto f = render_nftables(after, nullptr, existing, o);
  BOOST_TEST(contains(f, "delete chain ip deckhand-proxy svc-STRAY"));
  BOOST_TEST(contains(f, "delete set ip deckhand-proxy aff-OLD"));
  BOOST_TEST(count(f, "delete chain") == 1u);
  auto parsed = parse_nft_listing(
      "table ip x {\n\tmap service-ips {\n\t\ttype ipv4_addr : verdict\n\t}\n"
      "\tchain svc-A {\n\t\tip daddr 1.2.3.4 jump m\n\t\tdnat ip to numgen random mod 2 map "
      "{ 0 : 1.1.1.1 . 80,\n\t\t\t1 : 1.1.1.2 . 80 }\n\t}\n"
      "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
      "\t\tjump services\n\t}\n\tchain empty {\n\t}\n\tset aff-B {\n\t}\n}\n");
  BOOST_TEST(parsed.table);
  BOOST_TEST(parsed.chains.count("svc-A") == 1u);
  BOOST_TEST(parsed.sets.size() == 2u);
  // Rules per chain: a rule wrapped over two lines counts once, hook lines not.
  BOOST_TEST(parsed.rules["svc-A"] == 2u);
  BOOST_TEST(parsed.rules["nat-prerouting"] == 1u);
  BOOST_TEST(parsed.rules["empty"] == 0u);
  BOOST_TEST(!nft_listing_matches(after, parsed, o));
}

BOOST_AUTO_TEST_CASE(udp_conntrack_flushes_follow_removed_and_revived_backends) {
  auto u = entry("dns", "UDP", "10.96.0.10", 53, {be("10.88.0.5", 53), be("10.88.0.6", 53)});
  auto u2 = u;
  u2.backends = {be("10.88.0.6", 53)};
  auto cmds = conntrack_flushes(map_of({u2}), map_of({u}));
  BOOST_REQUIRE_EQUAL(cmds.size(), 1u);
  BOOST_TEST(cmds[0] ==
             (std::vector<std::string>{"conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10",
                                       "--dport", "53", "--reply-src", "10.88.0.5"}));
  auto none = u;
  none.backends.clear();
  auto revived = conntrack_flushes(map_of({u}), map_of({none}));
  BOOST_REQUIRE_EQUAL(revived.size(), 1u);
  BOOST_TEST(revived[0].size() == 8u);
  auto t = entry("web", "TCP", "10.96.0.11", 80, {be("10.88.0.5", 80)});
  BOOST_TEST(conntrack_flushes(map_of({}), map_of({t})).empty());
}

BOOST_AUTO_TEST_CASE(iptables_render_has_statistic_recent_and_reject) {
  auto m = map_of({
      entry("web", "TCP", "10.96.0.10", 80,
            {be("10.88.0.5", 8080), be("10.88.0.6", 8080), be("10.88.0.7", 8080)}, 30080, true),
      entry("empty", "TCP", "10.96.0.12", 80, {}, 30081),
      entry("plain", "TCP", "10.96.0.13", 80, {be("10.88.0.5", 8080), be("10.88.0.6", 8080)}),
  });
  kernel_options o;
  auto t = render_iptables(m, nullptr, {}, o);
  // Endpoint chains only with affinity (three for web); plain DNATs from its
  // SVC chain, hairpin-marking its endpoints' own connections first.
  BOOST_TEST(count(t, ":DECKHAND-SEP-") == 3u);
  BOOST_TEST(contains(t, " -p tcp -m tcp -m statistic --mode random --probability 0.5000000000 "
                         "-j DNAT --to-destination 10.88.0.5:8080\n"));
  BOOST_TEST(contains(t, " -p tcp -m tcp -j DNAT --to-destination 10.88.0.6:8080\n"));
  BOOST_TEST(contains(t, " -s 10.88.0.6/32 -j DECKHAND-MARK-MASQ\n"));
  BOOST_TEST(contains(t, "*nat\n"));
  BOOST_TEST(contains(t, "*filter\n"));
  BOOST_TEST(contains(t, ":DECKHAND-SERVICES - [0:0]"));
  BOOST_TEST(contains(t, "-m statistic --mode random --probability 0.3333333333"));
  BOOST_TEST(contains(t, "-m statistic --mode random --probability 0.5000000000"));
  BOOST_TEST(contains(t, "--rcheck --seconds 60 --reap"));
  BOOST_TEST(contains(t, "-j DNAT --to-destination 10.88.0.7:8080"));
  BOOST_TEST(contains(t, "-d 10.96.0.12/32 -p tcp -m tcp --dport 80 -j REJECT"));
  BOOST_TEST(contains(t, "--dport 30081 -j REJECT"));
  // Jumps from the builtin chains are added when the kernel lacks them.
  BOOST_TEST(contains(t, "-I PREROUTING -m comment --comment deckhand-proxy -j DECKHAND-SERVICES"));
  iptables_objects have;
  have.jumps = {"nat PREROUTING DECKHAND-SERVICES"};
  auto t2 = render_iptables(m, nullptr, have, o);
  BOOST_TEST(
      !contains(t2, "-I PREROUTING -m comment --comment deckhand-proxy -j DECKHAND-SERVICES"));
  // Incremental: only the changed Service's chains are declared (so
  // flushed); no jumps, no stale deletions but the removed endpoint's.
  auto m2 = m;
  for (auto& e : m2.entries)
    if (e.service == "plain")
      e.backends.pop_back();
  auto t3 = render_iptables(m2, &m, {}, o);
  BOOST_TEST(count(t3, ":DECKHAND-SVC-") == 1u);
  BOOST_TEST(!contains(t3, ":DECKHAND-SEP-"));
  BOOST_TEST(!contains(t3, "-I "));
  BOOST_TEST(!contains(t3, "-X "));
}

BOOST_AUTO_TEST_SUITE_END()

// -- real namespaces, real rules, real connections ----------------------------

#include "netns_fixture.hpp"

namespace {

using namespace deckhand::proxy::testing;

/// The Services of the scenario.
struct scenario {
  netfix& f;
  std::string web, dns, sticky, empty;
  std::vector<backend> pods(int port, std::vector<int> which, int unready = -1) {
    std::vector<backend> out;
    for (int i : which)
      out.push_back(be(f.pod_ip(i), port, i != unready));
    return out;
  }
  explicit scenario(netfix& fx)
      : f(fx),
        web(fx.svcnet + "10"),
        dns(fx.svcnet + "11"),
        sticky(fx.svcnet + "12"),
        empty(fx.svcnet + "13") {}
  service_map make(std::vector<int> which, int unready = -1) {
    return map_of({
        entry("web", "TCP", web, 80, pods(8080, which, unready), f.node_port),
        entry("dns", "UDP", dns, 53, pods(5353, which, unready)),
        entry("sticky", "TCP", sticky, 80, pods(8080, which, unready), 0, true),
        entry("empty", "TCP", empty, 80, {}, f.node_port + 1),
    });
  }
};

void exercise(netfix& f, const std::function<std::unique_ptr<data_plane>()>& make,
              const std::function<void()>& damage) {
  scenario s(f);
  auto plane = make();
  auto all = s.make({0, 1, 2});
  auto r = plane->apply(all, {});
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.err().message));
  auto client = f.ns("client");
  std::set<std::string> pods3{"pod0", "pod1", "pod2"};

  // From another pod: spread over the three backends.
  BOOST_TEST(spread(client, s.web, 80, 45) == pods3);
  // From the node.
  BOOST_TEST(spread("", s.web, 80, 45) == pods3);
  // Through the NodePort, from outside, on two of the node's addresses.
  BOOST_TEST(spread(f.ns("ext"), f.extnet + "1", f.node_port, 45) == pods3);
  BOOST_TEST(pods3.count(ask(f.ns("ext"), f.net + "1", f.node_port)) == 1u);
  // A pod reaching its own Service lands on itself too (hairpin, masqueraded).
  BOOST_TEST(spread(f.ns("pod0"), s.web, 80, 45) == pods3);
  // UDP.
  BOOST_TEST(pods3.count(ask_udp(client, s.dns, 53)) == 1u);
  // Affinity: one backend for this client.
  auto first = spread(client, s.sticky, 80, 15);
  BOOST_TEST(first.size() == 1u);
  BOOST_TEST(pods3.count(*first.begin()) == 1u);
  // No endpoints: refused at once, not a timeout; the NodePort too.
  auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(ask(client, s.empty, 80) == "refused");
  BOOST_TEST(ask("", s.empty, 80) == "refused");
  BOOST_TEST(ask(f.ns("ext"), f.extnet + "1", f.node_port + 1) == "refused");
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 2s));

  // pod1 turns unready: no new connections reach it.
  auto unready = s.make({0, 1, 2}, 1);
  r = plane->apply(unready, all);
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.err().message));
  BOOST_TEST(spread(client, s.web, 80, 30) == (std::set<std::string>{"pod0", "pod2"}));
  // Scale down to one, then up to three again.
  auto one = s.make({2});
  r = plane->apply(one, unready);
  BOOST_REQUIRE(r);
  BOOST_TEST(spread(client, s.web, 80, 10) == (std::set<std::string>{"pod2"}));
  BOOST_TEST(ask_udp(client, s.dns, 53) == "pod2");
  r = plane->apply(all, one);
  BOOST_REQUIRE(r);
  BOOST_TEST(spread(client, s.web, 80, 45) == pods3);

  // A new data plane object (a restarted proxy) adopts the rules: an
  // established flow keeps working through its first (full) apply.
  std::string why;
  int fd = dial(client, s.web, 80, why);
  BOOST_REQUIRE_MESSAGE(fd >= 0, why);
  auto name = read_line(fd);
  BOOST_TEST(pods3.count(name) == 1u);
  auto plane2 = make();
  r = plane2->apply(all, {});
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.err().message));
  BOOST_REQUIRE(::write(fd, "ping\n", 5) == 5);
  BOOST_TEST(read_line(fd) == "ping");
  ::close(fd);
  BOOST_TEST(spread(client, s.web, 80, 45) == pods3);
  // Re-applying the same map is harmless, and a full resync repairs.
  plane2->request_full_sync();
  BOOST_REQUIRE(plane2->apply(all, all));
  BOOST_TEST(pods3.count(ask(client, s.web, 80)) == 1u);
  // Damage by hand (a flushed map or chain), then the periodic resync.
  damage();
  plane2->request_full_sync();
  BOOST_REQUIRE(plane2->apply(all, all));
  BOOST_TEST(spread(client, s.web, 80, 45) == pods3);

  // Cleanup removes everything.
  BOOST_REQUIRE(plane2->cleanup());
  BOOST_REQUIRE(plane2->cleanup());  // twice: nothing left is not an error
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kernel, *boost::unit_test::label("integration"))

BOOST_AUTO_TEST_CASE(nftables_data_plane_routes_real_connections,
                     *deckhand::testing::skip_unless(deckhand::proxy::testing::nftables_host())) {
  netfix f;
  nftables_data_plane* last = nullptr;
  exercise(
      f,
      [&] {
        auto p = std::make_unique<nftables_data_plane>(f.opts);
        last = p.get();
        return p;
      },
      [&] {
        // The resync just before found the table intact: maps refilled only.
        BOOST_TEST(last->verified_resyncs() == 1u);
        BOOST_TEST(!last->last_was_full());
        sh({"nft", "flush", "map", "ip", f.opts.nft_table, "service-ips"});
        sh({"nft", "flush", "chain", "ip", f.opts.nft_table, "services"});
      });
  auto rules = sh({"nft", "list", "ruleset"});
  BOOST_TEST(!contains(rules, f.opts.nft_table));
}

BOOST_AUTO_TEST_CASE(iptables_data_plane_routes_real_connections,
                     *deckhand::testing::skip_unless(deckhand::proxy::testing::iptables_host())) {
  netfix f;
  exercise(
      f, [&] { return std::make_unique<iptables_data_plane>(f.opts); },
      [&] {
        auto svcs = f.opts.chain_prefix + "-SERVICES";
        sh({"iptables", "-w", "5", "-t", "nat", "-F", svcs});
        sh({"iptables", "-w", "5", "-t", "nat", "-D", "PREROUTING", "-m", "comment", "--comment",
            "deckhand-proxy", "-j", svcs});
      });
  auto rules = sh({"iptables-save"});
  BOOST_TEST(!contains(rules, f.opts.chain_prefix));
}

BOOST_AUTO_TEST_SUITE_END()
