#include "deckhand/proxy/iptables.hpp"

#include <unistd.h>

#include <cctype>
#include <map>
#include <sstream>

#include "deckhand/common/log.hpp"
#include "deckhand/proxy/command.hpp"

namespace deckhand::proxy {

namespace {

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

struct names {
  std::string p;
  std::string services() const { return p + "-SERVICES"; }
  std::string nodeports() const { return p + "-NODEPORTS"; }
  std::string postrouting() const { return p + "-POSTROUTING"; }
  std::string mark_masq() const { return p + "-MARK-MASQ"; }
  std::string external() const { return p + "-EXTERNAL"; }
  std::string svc(const service_port_entry& e) const {
    return p + "-SVC-" + stable_hash(entry_id(e));
  }
  std::string ext(const service_port_entry& e) const {
    return p + "-EXT-" + stable_hash(entry_id(e));
  }
  std::string sep(const service_port_entry& e, const backend& b) const {
    return p + "-SEP-" + stable_hash(endpoint_id(e, b));
  }
};

bool local_policy(const service_port_entry& e, const kernel_options& o) {
  return e.external_policy_local && !o.node_name.empty() && e.node_port;
}

std::set<std::string> distinct_ips(const std::vector<backend>& bs) {
  std::set<std::string> out;
  for (const auto& b : bs)
    out.insert(b.ip);
  return out;
}

/// The nat chains one Service port owns: its SVC chain, an EXT chain with a
/// NodePort, and SEP chains only with ClientIP affinity (`-m recent` records
/// the choice per endpoint); otherwise the SVC chain DNATs itself. A chain
/// per endpoint is what makes iptables-restore slow at 10,000 endpoints.
std::set<std::string> chains_of(const service_port_entry& e, const names& n) {
  std::set<std::string> out;
  auto usable = e.usable_backends();
  if (usable.empty())
    return out;
  out.insert(n.svc(e));
  if (e.node_port)
    out.insert(n.ext(e));
  if (e.affinity_client_ip)
    for (const auto& b : usable)
      out.insert(n.sep(e, b));
  return out;
}

struct jump {
  const char* table;
  const char* builtin;
  std::string target;
  std::string match;
};

std::vector<jump> jumps_of(const names& n) {
  const std::string ct = "-m conntrack --ctstate NEW ";
  return {
      {"nat", "PREROUTING", n.services(), ""},     {"nat", "OUTPUT", n.services(), ""},
      {"nat", "POSTROUTING", n.postrouting(), ""}, {"filter", "INPUT", n.services(), ct},
      {"filter", "INPUT", n.external(), ct},       {"filter", "FORWARD", n.services(), ct},
      {"filter", "OUTPUT", n.services(), ct},      {"filter", "OUTPUT", n.external(), ct},
  };
}

class renderer {
 public:
  renderer(const kernel_options& o) : o_(o), n_{o.chain_prefix} {}

  std::ostringstream decl, rules, tail;

  void entry(const service_port_entry& e) {
    auto usable = e.usable_backends();
    if (usable.empty())
      return;
    auto proto = lower(e.protocol);
    auto pm = "-p " + proto + " -m " + proto;
    auto svc = n_.svc(e);
    chain(svc);
    if (!e.cluster_ip.empty()) {
      rules << "-A " << svc << " -d " << e.cluster_ip << "/32 " << pm << " --dport " << e.port;
      if (!o_.pod_cidr.empty())
        rules << " ! -s " << o_.pod_cidr;
      rules << " -j " << n_.mark_masq() << "\n";
    }
    pick(svc, e, usable);
    if (e.node_port) {
      auto ext = n_.ext(e);
      chain(ext);
      if (local_policy(e, o_)) {
        std::vector<backend> local;
        for (const auto& b : usable)
          if (b.node_name == o_.node_name)
            local.push_back(b);
        if (local.empty())
          rules << "-A " << ext << " -j DROP\n";
        else
          pick(ext, e, local);
      } else {
        rules << "-A " << ext << " -j " << n_.mark_masq() << "\n";
        rules << "-A " << ext << " -j " << svc << "\n";
      }
    }
    if (e.affinity_client_ip)
      for (const auto& b : usable) {
        auto sep = n_.sep(e, b);
        chain(sep);
        rules << "-A " << sep << " -s " << b.ip << "/32 -j " << n_.mark_masq() << "\n";
        rules << "-A " << sep << " " << pm << " -m recent --name " << sep
              << " --mask 255.255.255.255 --rsource --set -j DNAT --to-destination " << b.ip << ":"
              << b.port << "\n";
      }
  }

  void chain(const std::string& c) { decl << ":" << c << " - [0:0]\n"; }

  void remove(const std::string& c) {
    chain(c);
    tail << "-X " << c << "\n";
  }

 private:
  void pick(const std::string& chain, const service_port_entry& e, const std::vector<backend>& bs) {
    auto proto = lower(e.protocol);
    if (e.affinity_client_ip)
      for (const auto& b : bs)
        rules << "-A " << chain << " -m recent --name " << n_.sep(e, b)
              << " --mask 255.255.255.255 --rsource --rcheck --seconds "
              << e.affinity_timeout_seconds << " --reap -j " << n_.sep(e, b) << "\n";
    else
      // Hairpin (a pod reaching itself through the Service) needs
      // masquerading. Without a chain per endpoint the mark is set before
      // the choice, so a backend reaching its own Service is masqueraded
      // whichever endpoint it lands on (kube-proxy: only when it lands on
      // itself); other clients keep their source address.
      for (const auto& ip : distinct_ips(bs))
        rules << "-A " << chain << " -s " << ip << "/32 -j " << n_.mark_masq() << "\n";
    for (size_t i = 0; i < bs.size(); ++i) {
      rules << "-A " << chain;
      size_t left = bs.size() - i;
      if (!e.affinity_client_ip)
        rules << " -p " << proto << " -m " << proto;
      if (left > 1) {
        char prob[32];
        std::snprintf(prob, sizeof prob, "%.10f", 1.0 / static_cast<double>(left));
        rules << " -m statistic --mode random --probability " << prob;
      }
      if (e.affinity_client_ip)
        rules << " -j " << n_.sep(e, bs[i]) << "\n";
      else
        rules << " -j DNAT --to-destination " << bs[i].ip << ":" << bs[i].port << "\n";
    }
  }

  const kernel_options& o_;
  names n_;
};

}  // namespace

iptables_objects parse_iptables_save(const std::string& text, const std::string& prefix) {
  iptables_objects out;
  std::istringstream in(text);
  std::string line, table;
  auto ours = prefix + "-";
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    if (line[0] == '*') {
      table = line.substr(1);
    } else if (line[0] == ':') {
      auto name = line.substr(1, line.find(' ') - 1);
      if (name.rfind(ours, 0) == 0)
        out.chains.insert(table + " " + name);
    } else if (line.rfind("-A ", 0) == 0) {
      auto sp = line.find(' ', 3);
      auto chain = line.substr(3, sp - 3);
      auto j = line.find(" -j ");
      if (j == std::string::npos || chain.rfind(ours, 0) == 0)
        continue;
      auto target = line.substr(j + 4);
      target = target.substr(0, target.find(' '));
      if (target.rfind(ours, 0) == 0)
        out.jumps.insert(table + " " + chain + " " + target);
    }
  }
  return out;
}

std::string render_iptables(const service_map& desired, const service_map* previous,
                            const iptables_objects& existing, const kernel_options& opts) {
  names n{opts.chain_prefix};
  renderer nat(opts);
  std::set<std::string> want{n.services(), n.nodeports(), n.postrouting(), n.mark_masq()};
  std::set<std::string> stale;
  std::map<std::string, const service_port_entry*> before;
  if (previous)
    for (const auto& e : previous->entries)
      before[entry_id(e)] = &e;
  for (const auto& e : desired.entries) {
    auto c = chains_of(e, n);
    want.insert(c.begin(), c.end());
    auto it = before.find(entry_id(e));
    if (!previous || it == before.end() || !(*it->second == e))
      nat.entry(e);
  }
  if (!previous) {
    for (const auto& c : existing.chains)
      if (c.rfind("nat ", 0) == 0 && !want.count(c.substr(4)))
        stale.insert(c.substr(4));
  } else {
    std::map<std::string, const service_port_entry*> after;
    for (const auto& e : desired.entries)
      after[entry_id(e)] = &e;
    for (const auto& p : previous->entries) {
      auto it = after.find(entry_id(p));
      if (it != after.end() && *it->second == p)
        continue;
      for (const auto& c : chains_of(p, n))
        if (!want.count(c))
          stale.insert(c);
    }
  }

  // The top-level chains are rewritten on every sync (a line per Service port).
  std::ostringstream top, ftop;
  auto mark = hex(opts.masquerade_mark);
  std::ostringstream out;
  out << "*nat\n";
  for (const auto& c : {n.services(), n.nodeports()})
    out << ":" << c << " - [0:0]\n";
  if (!previous)
    for (const auto& c : {n.postrouting(), n.mark_masq()})
      out << ":" << c << " - [0:0]\n";
  for (const auto& c : stale)
    nat.remove(c);
  out << nat.decl.str();
  if (!previous) {
    out << "-A " << n.mark_masq() << " -j MARK --or-mark " << mark << "\n";
    out << "-A " << n.postrouting() << " -m mark ! --mark " << mark << "/" << mark
        << " -j RETURN\n";
    out << "-A " << n.postrouting() << " -j MARK --xor-mark " << mark << "\n";
    out << "-A " << n.postrouting() << " -j MASQUERADE --random-fully\n";
  }
  std::ostringstream reject_svc, reject_ext;
  for (const auto& e : desired.entries) {
    auto proto = lower(e.protocol);
    auto pm = "-p " + proto + " -m " + proto;
    bool none = e.usable_backends().empty();
    if (!e.cluster_ip.empty()) {
      auto& into = none ? reject_svc : out;
      into << "-A " << n.services() << " -d " << e.cluster_ip << "/32 " << pm << " --dport "
           << e.port << " -j " << (none ? std::string("REJECT") : n.svc(e)) << "\n";
    }
    if (e.node_port) {
      if (none)
        reject_ext << "-A " << n.external() << " -m addrtype --dst-type LOCAL " << pm << " --dport "
                   << e.node_port << " -j REJECT\n";
      else
        out << "-A " << n.nodeports() << " " << pm << " --dport " << e.node_port << " -j "
            << n.ext(e) << "\n";
    }
  }
  out << "-A " << n.services() << " ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j "
      << n.nodeports() << "\n";
  out << nat.rules.str();
  auto jumps = jumps_of(n);
  for (const auto& j : jumps)
    if (!previous && std::string(j.table) == "nat" &&
        !existing.jumps.count("nat " + std::string(j.builtin) + " " + j.target))
      out << "-I " << j.builtin << " " << j.match << "-m comment --comment deckhand-proxy -j "
          << j.target << "\n";
  out << nat.tail.str();
  out << "COMMIT\n*filter\n";
  out << ":" << n.services() << " - [0:0]\n:" << n.external() << " - [0:0]\n";
  out << reject_svc.str() << reject_ext.str();
  for (const auto& j : jumps)
    if (!previous && std::string(j.table) == "filter" &&
        !existing.jumps.count("filter " + std::string(j.builtin) + " " + j.target))
      out << "-I " << j.builtin << " " << j.match << "-m comment --comment deckhand-proxy -j "
          << j.target << "\n";
  out << "COMMIT\n";
  return out.str();
}

iptables_data_plane::iptables_data_plane(kernel_options opts) : opts_(std::move(opts)) {}

namespace {

result<iptables_objects> read_existing(const kernel_options& o) {
  std::string all;
  for (const char* t : {"nat", "filter"}) {
    auto r = run_checked({"iptables-save", "-t", t});
    if (!r)
      return r.err();
    all += r->out;
  }
  return parse_iptables_save(all, o.chain_prefix);
}

}  // namespace

result<void> iptables_data_plane::apply(const service_map& desired, const service_map& previous) {
  bool full = full_next_ || !applied_ || !(*applied_ == previous);
  iptables_objects existing;
  // Only a full sync reads the kernel (our chains, to delete strays, and the
  // jumps from the builtin chains, re-added if deleted by hand); an
  // incremental one knows what it wrote.
  if (full) {
    auto ex = read_existing(opts_);
    if (!ex)
      return ex.err();
    existing = std::move(*ex);
  }
  last_text_ = render_iptables(desired, full ? nullptr : &previous, existing, opts_);
  last_full_ = full;
  auto r = run_checked({"iptables-restore", "--noflush", "-w", "5"}, last_text_);
  if (!r) {
    full_next_ = true;
    applied_.reset();
    return r.err();
  }
  full_next_ = false;
  applied_ = desired;
  if (opts_.flush_conntrack) {
    if (auto f = flush_udp_conntrack(desired, previous); !f)
      log::get()->warn("msg=\"conntrack flush incomplete\" error=\"{}\"", f.err().message);
  }
  return {};
}

result<void> iptables_data_plane::cleanup() {
  applied_.reset();
  full_next_ = true;
  if (!have_program("iptables-restore") || !have_program("iptables-save"))
    return {};
  auto ex = read_existing(opts_);
  if (!ex)
    return ex.err();
  if (ex->chains.empty() && ex->jumps.empty())
    return {};
  // Jumps out of the builtin chains go first, then our chains are flushed
  // (declared) and deleted, all in one transaction per table.
  std::ostringstream out;
  for (const char* t : {"nat", "filter"}) {
    std::string table = t;
    out << "*" << table << "\n";
    for (const auto& c : ex->chains)
      if (c.rfind(table + " ", 0) == 0)
        out << ":" << c.substr(table.size() + 1) << " - [0:0]\n";
    for (const auto& j : jumps_of(names{opts_.chain_prefix}))
      if (j.table == table && ex->jumps.count(table + " " + j.builtin + " " + j.target))
        out << "-D " << j.builtin << " " << j.match << "-m comment --comment deckhand-proxy -j "
            << j.target << "\n";
    for (const auto& c : ex->chains)
      if (c.rfind(table + " ", 0) == 0)
        out << "-X " << c.substr(table.size() + 1) << "\n";
    out << "COMMIT\n";
  }
  auto r = run_checked({"iptables-restore", "--noflush", "-w", "5"}, out.str());
  if (!r)
    return r.err();
  return {};
}

bool iptables_available() {
  if (::geteuid() != 0 || !have_program("iptables-restore") || !have_program("iptables-save"))
    return false;
  auto r = run_command({"iptables-save", "-t", "nat"}, {}, std::chrono::seconds(5));
  return r && r->exit_code == 0;
}

}  // namespace deckhand::proxy
