#include "deckhand/proxy/kernel.hpp"

#include <fstream>
#include <map>
#include <set>

#include "deckhand/common/log.hpp"
#include "deckhand/common/sha256.hpp"
#include "deckhand/proxy/command.hpp"

namespace deckhand::proxy {

std::string stable_hash(const std::string& text, size_t n) {
  auto digest = sha256::of(text);
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint64_t buffer = 0;
  int bits = 0;
  for (unsigned char c : digest) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 5 && out.size() < n) {
      out.push_back(alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
    if (out.size() >= n)
      break;
  }
  return out;
}

std::string entry_id(const service_port_entry& e) { return e.key() + "/" + e.protocol; }

std::string endpoint_id(const service_port_entry& e, const backend& b) {
  return entry_id(e) + "/" + b.ip + ":" + std::to_string(b.port);
}

std::vector<std::vector<std::string>> conntrack_flushes(const service_map& desired,
                                                        const service_map& previous) {
  std::map<std::string, const service_port_entry*> now;
  for (const auto& e : desired.entries)
    now[entry_id(e)] = &e;
  std::vector<std::vector<std::string>> out;
  auto by_dst = [&](const service_port_entry& e, const std::string& ip) {
    if (!e.cluster_ip.empty())
      out.push_back({"conntrack", "-D", "-p", "udp", "--orig-dst", e.cluster_ip, "--dport",
                     std::to_string(e.port), "--reply-src", ip});
    if (e.node_port)
      out.push_back({"conntrack", "-D", "-p", "udp", "--dport", std::to_string(e.node_port),
                     "--reply-src", ip});
  };
  std::set<std::string> seen;
  for (const auto& p : previous.entries) {
    if (p.protocol != "UDP")
      continue;
    auto it = now.find(entry_id(p));
    std::set<std::string> keep;
    if (it != now.end() && it->second->cluster_ip == p.cluster_ip && it->second->port == p.port &&
        it->second->node_port == p.node_port)
      for (const auto& b : it->second->usable_backends())
        keep.insert(b.ip + ":" + std::to_string(b.port));
    for (const auto& b : p.usable_backends())
      if (!keep.count(b.ip + ":" + std::to_string(b.port)) &&
          seen.insert(entry_id(p) + b.ip).second)
        by_dst(p, b.ip);
  }
  std::map<std::string, const service_port_entry*> before;
  for (const auto& e : previous.entries)
    before[entry_id(e)] = &e;
  for (const auto& e : desired.entries) {
    if (e.usable_backends().empty())
      continue;
    auto it = before.find(entry_id(e));
    bool programmed = it != before.end() && it->second->cluster_ip == e.cluster_ip &&
                      it->second->port == e.port && !it->second->usable_backends().empty();
    if (e.protocol == "TCP") {
      // A SYN that reached the node before this ClusterIP port had its DNAT
      // (Service just created, or created while no proxy ran) left a conntrack
      // entry with no NAT: its reply source is the ClusterIP itself. That
      // entry (SYN_SENT, 120 s) catches the connection's retransmits and any
      // later connection from the same client port, and none can ever reach
      // a pod. Only such entries are deleted: DNATed (live) flows have a
      // pod's address as reply source and are left alone.
      if (!programmed && !e.cluster_ip.empty())
        out.push_back({"conntrack", "-D", "-p", "tcp", "--orig-dst", e.cluster_ip, "--dport",
                       std::to_string(e.port), "--reply-src", e.cluster_ip});
      continue;
    }
    if (e.protocol != "UDP")
      continue;
    if (it != before.end() && !it->second->usable_backends().empty())
      continue;
    // New, or had no endpoints: entries made while it rejected carry no DNAT.
    if (!e.cluster_ip.empty())
      out.push_back({"conntrack", "-D", "-p", "udp", "--orig-dst", e.cluster_ip, "--dport",
                     std::to_string(e.port)});
    if (e.node_port)
      out.push_back({"conntrack", "-D", "-p", "udp", "--dport", std::to_string(e.node_port)});
  }
  return out;
}

result<void> flush_udp_conntrack(const service_map& desired, const service_map& previous) {
  auto cmds = conntrack_flushes(desired, previous);
  if (cmds.empty())
    return {};
  if (!have_program("conntrack"))
    return error{errc::not_found, "conntrack is not installed: stale UDP flows not flushed"};
  std::string failures;
  for (const auto& argv : cmds) {
    auto r = run_command(argv, {}, std::chrono::seconds(10));
    if (!r) {
      failures += r.err().message + "; ";
      continue;
    }
    // Exit 1 with "0 flow entries have been deleted" just means none existed.
    if (r->exit_code != 0 && r->err.find("0 flow entries") == std::string::npos)
      failures += argv[5] + ": " + r->err + "; ";
  }
  if (!failures.empty())
    return error{errc::io, "conntrack: " + failures};
  return {};
}

result<bool> enable_ip_forward() {
  const char* path = "/proc/sys/net/ipv4/ip_forward";
  std::ifstream in(path);
  std::string v;
  in >> v;
  if (v == "1")
    return true;
  std::ofstream out(path);
  out << "1\n";
  out.flush();
  if (!out)
    return error{errc::io, std::string("cannot write ") + path};
  return false;
}

}  // namespace deckhand::proxy
