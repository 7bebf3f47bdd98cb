#include "deckhand/proxy/nftables.hpp"

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

std::string svc_chain(const service_port_entry& e) { return "svc-" + stable_hash(entry_id(e)); }
std::string ext_chain(const service_port_entry& e) { return "ext-" + stable_hash(entry_id(e)); }
std::string ep_chain(const service_port_entry& e, const backend& b) {
  return "ep-" + stable_hash(endpoint_id(e, b));
}
/// The timeout is part of the name: nft cannot change a set's timeout in
/// place, so a new timeout makes a new set (and the old one goes away).
std::string aff_set(const service_port_entry& e, const backend& b) {
  return "aff-" + stable_hash(endpoint_id(e, b) + "/" + std::to_string(e.affinity_timeout_seconds));
}

bool local_policy(const service_port_entry& e, const kernel_options& o) {
  return e.external_policy_local && !o.node_name.empty() && e.node_port;
}

std::vector<backend> local_backends(const service_port_entry& e, const kernel_options& o) {
  std::vector<backend> out;
  for (const auto& b : e.usable_backends())
    if (b.node_name == o.node_name)
      out.push_back(b);
  return out;
}

/// A chain and its rules, in order. Base chains carry their hook line.
struct chain_def {
  std::string name;
  std::string hook;  ///< "type nat hook prerouting priority dstnat; policy accept;" or empty
  std::vector<std::string> rules;
};

const char* static_maps[] = {"service-ips", "service-nodeports", "no-endpoint-services",
                             "no-endpoint-nodeports"};
/// (ip . ip) of every usable endpoint: a connection DNATed to the pod that
/// opened it (hairpin) is masqueraded, or the pod's reply would not come back
/// through the node. One set lookup in postrouting instead of a chain per
/// endpoint: per-endpoint chains are what makes a large table slow to load.
constexpr const char* hairpin_set = "hairpin-ips";

std::vector<chain_def> static_chain_defs(const kernel_options& o) {
  auto mark = hex(o.masquerade_mark);
  auto base = [](const char* type, const char* hook, const char* prio) {
    return std::string("type ") + type + " hook " + hook + " priority " + prio + "; policy accept;";
  };
  return {
      {"nat-prerouting", base("nat", "prerouting", "dstnat"), {"jump services"}},
      {"nat-output", base("nat", "output", "-100"), {"jump services"}},
      {"nat-postrouting", base("nat", "postrouting", "srcnat"), {"jump masquerading"}},
      {"filter-input",
       base("filter", "input", "-110"),
       {"ct state new jump endpoints-check", "ct state new jump nodeport-check"}},
      {"filter-forward", base("filter", "forward", "-110"), {"ct state new jump endpoints-check"}},
      {"filter-output",
       base("filter", "output", "-110"),
       {"ct state new jump endpoints-check", "ct state new jump nodeport-check"}},
      {"services",
       "",
       {"ip daddr . meta l4proto . th dport vmap @service-ips",
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap "
        "@service-nodeports"}},
      {"masquerading",
       "",
       {std::string("ct status dnat ip saddr . ip daddr @") + hairpin_set +
            " masquerade fully-random",
        "meta mark & " + mark + " == 0 return", "meta mark set meta mark ^ " + mark,
        "masquerade fully-random"}},
      {"mark-for-masquerade", "", {"meta mark set meta mark | " + mark}},
      {"endpoints-check", "", {"ip daddr . meta l4proto . th dport vmap @no-endpoint-services"}},
      {"nodeport-check",
       "",
       {"fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap "
        "@no-endpoint-nodeports"}},
      // ICMP port unreachable for UDP, a TCP reset for TCP: a quick refusal,
      // as on kube-proxy, never a timeout.
      {"reject-chain", "", {"meta l4proto tcp reject with tcp reset", "reject"}},
  };
}

struct set_def {
  std::string name;
  std::string body;  ///< "type ...; flags ...;"
};

/// What one Service port owns: its chains with their rules, and its sets.
struct entry_def {
  std::vector<chain_def> chains;
  std::vector<set_def> sets;
};

/// The rule that picks one of `bs` (all usable, affinity or not).
void add_pick(chain_def& c, const service_port_entry& e, const std::vector<backend>& bs,
              const std::string& proto) {
  if (e.affinity_client_ip) {
    // ClientIP affinity: a client seen within the timeout goes where it
    // went before; endpoint chains record the choice.
    for (const auto& b : bs)
      c.rules.push_back("ip saddr @" + aff_set(e, b) + " goto " + ep_chain(e, b));
    std::string r = "numgen random mod " + std::to_string(bs.size()) + " vmap { ";
    for (size_t i = 0; i < bs.size(); ++i)
      r += (i ? ", " : "") + std::to_string(i) + " : goto " + ep_chain(e, bs[i]);
    c.rules.push_back(r + " }");
    return;
  }
  if (bs.size() == 1) {
    c.rules.push_back("meta l4proto " + proto + " dnat to " + bs[0].ip + ":" +
                      std::to_string(bs[0].port));
    return;
  }
  // Equal probability, no chain per endpoint: numgen indexes an anonymous
  // map of address . port.
  std::string r = "meta l4proto " + proto + " dnat ip addr . port to numgen random mod " +
                  std::to_string(bs.size()) + " map { ";
  for (size_t i = 0; i < bs.size(); ++i)
    r +=
        (i ? ", " : "") + std::to_string(i) + " : " + bs[i].ip + " . " + std::to_string(bs[i].port);
  c.rules.push_back(r + " }");
}

entry_def define_entry(const service_port_entry& e, const kernel_options& o) {
  entry_def d;
  auto usable = e.usable_backends();
  if (usable.empty())
    return d;  // answered from the no-endpoint maps, no chains
  auto proto = lower(e.protocol);
  chain_def svc{svc_chain(e), "", {}};
  if (!e.cluster_ip.empty()) {
    std::string r = "ip daddr " + e.cluster_ip + " meta l4proto " + proto + " th dport " +
                    std::to_string(e.port);
    if (!o.pod_cidr.empty())
      r += " ip saddr != " + o.pod_cidr;
    svc.rules.push_back(r + " jump mark-for-masquerade");
  }
  add_pick(svc, e, usable, proto);
  d.chains.push_back(std::move(svc));
  if (e.node_port) {
    chain_def ext{ext_chain(e), "", {}};
    if (local_policy(e, o)) {
      // externalTrafficPolicy Local: client source kept, local pods only.
      auto local = local_backends(e, o);
      if (local.empty())
        ext.rules.push_back("drop");
      else
        add_pick(ext, e, local, proto);
    } else {
      ext.rules.push_back("jump mark-for-masquerade");
      ext.rules.push_back("goto " + svc_chain(e));
    }
    d.chains.push_back(std::move(ext));
  }
  if (e.affinity_client_ip) {
    for (const auto& b : usable) {
      d.sets.push_back({aff_set(e, b), "type ipv4_addr; flags dynamic,timeout; timeout " +
                                           std::to_string(e.affinity_timeout_seconds) + "s;"});
      d.chains.push_back(
          {ep_chain(e, b),
           "",
           {"update @" + aff_set(e, b) + " { ip saddr }",
            "meta l4proto " + proto + " dnat to " + b.ip + ":" + std::to_string(b.port)}});
    }
  }
  return d;
}

/// Every chain (with its rule count) and set the table should hold.
struct expectation {
  std::map<std::string, size_t> chains;
  std::set<std::string> sets;
};

expectation expect(const service_map& m, const kernel_options& o) {
  expectation x;
  for (const auto& c : static_chain_defs(o))
    x.chains[c.name] = c.rules.size();
  x.sets.insert(std::begin(static_maps), std::end(static_maps));
  x.sets.insert(hairpin_set);
  for (const auto& e : m.entries) {
    auto d = define_entry(e, o);
    for (const auto& c : d.chains)
      x.chains[c.name] = c.rules.size();
    for (const auto& s : d.sets)
      x.sets.insert(s.name);
  }
  return x;
}

class renderer {
 public:
  explicit renderer(const kernel_options& o) : o_(o), t_("ip " + o.nft_table) {}

  std::ostringstream out;

  /// The table, its maps and sets (declared, existing ones untouched).
  void declare(const std::vector<set_def>& sets) {
    out << "add table " << t_ << " { comment \"deckhand-proxy: Service rules\"; }\n";
    out << "table " << t_ << " {\n";
    out << "  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }\n";
    out << "  map service-nodeports { type inet_proto . inet_service : verdict; }\n";
    out << "  map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; }\n";
    out << "  map no-endpoint-nodeports { type inet_proto . inet_service : verdict; }\n";
    out << "  set " << hairpin_set << " { type ipv4_addr . ipv4_addr; }\n";
    for (const auto& s : sets)
      out << "  set " << s.name << " { " << s.body << " }\n";
    out << "}\n";
  }

  /// Chains with their rules, as one declarative block: nft parses and
  /// commits a block far faster than one `add rule` command per rule. The
  /// chains must be empty (new, or flushed earlier in the transaction).
  void chains(const std::vector<const chain_def*>& cs) {
    if (cs.empty())
      return;
    out << "table " << t_ << " {\n";
    for (const auto* c : cs) {
      out << "  chain " << c->name << " {\n";
      if (!c->hook.empty())
        out << "    " << c->hook << "\n";
      for (const auto& r : c->rules)
        out << "    " << r << "\n";
      out << "  }\n";
    }
    out << "}\n";
  }

  void flush_chains(const std::vector<const chain_def*>& cs) {
    // add first: flushing a chain that does not exist fails the transaction.
    for (const auto* c : cs)
      out << "add chain " << t_ << " " << c->name << "\n";
    for (const auto* c : cs)
      out << "flush chain " << t_ << " " << c->name << "\n";
  }

  void elements(const service_map& m) {
    std::vector<std::string> ips, nps, no_ips, no_nps;
    std::set<std::string> hairpin;
    for (const auto& e : m.entries) {
      auto proto = lower(e.protocol);
      auto usable = e.usable_backends();
      bool none = usable.empty();
      for (const auto& b : usable)
        hairpin.insert(b.ip);
      if (!e.cluster_ip.empty())
        (none ? no_ips : ips)
            .push_back(e.cluster_ip + " . " + proto + " . " + std::to_string(e.port) + " : goto " +
                       (none ? std::string("reject-chain") : svc_chain(e)));
      if (e.node_port)
        (none ? no_nps : nps)
            .push_back(proto + " . " + std::to_string(e.node_port) + " : goto " +
                       (none ? std::string("reject-chain") : ext_chain(e)));
    }
    for (const char* name : static_maps)
      out << "flush map " << t_ << " " << name << "\n";
    out << "flush set " << t_ << " " << hairpin_set << "\n";
    put("service-ips", ips);
    put("service-nodeports", nps);
    put("no-endpoint-services", no_ips);
    put("no-endpoint-nodeports", no_nps);
    std::vector<std::string> hp;
    for (const auto& ip : hairpin)
      hp.push_back(ip + " . " + ip);
    put(hairpin_set, hp);
  }

  void remove(const std::set<std::string>& chains, const std::set<std::string>& sets) {
    // Flush first, delete after: a stale chain may jump to another stale one.
    for (const auto& c : chains)
      out << "flush chain " << t_ << " " << c << "\n";
    for (const auto& c : chains)
      out << "delete chain " << t_ << " " << c << "\n";
    for (const auto& s : sets)
      out << "delete set " << t_ << " " << s << "\n";
  }

  const std::string& table() const { return t_; }

 private:
  void put(const char* map, const std::vector<std::string>& elems) {
    // Chunks keep single lines of a large transaction reasonable for nft's parser.
    for (size_t i = 0; i < elems.size(); i += 1000) {
      out << "add element " << t_ << " " << map << " { ";
      for (size_t j = i; j < elems.size() && j < i + 1000; ++j)
        out << (j > i ? ", " : "") << elems[j];
      out << " }\n";
    }
  }

  const kernel_options& o_;
  std::string t_;
};

}  // namespace

nft_objects parse_nft_listing(const std::string& text) {
  nft_objects out;
  std::istringstream in(text);
  std::string line;
  std::string chain;  // inside a chain block: its name
  int depth = 0;      // braces opened inside the current chain's rules
  while (std::getline(in, line)) {
    size_t i = 0;
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])))
      ++i;
    auto rest = line.substr(i);
    if (rest.empty())
      continue;
    if (!chain.empty()) {
      if (depth == 0 && rest == "}") {
        chain.clear();
        continue;
      }
      // A rule whose anonymous set nft wraps over several lines counts once.
      bool continuation = depth > 0;
      for (char c : rest)
        depth += c == '{' ? 1 : c == '}' ? -1 : 0;
      if (depth < 0)
        depth = 0;
      if (!continuation && rest.rfind("type ", 0) != 0 && rest.rfind("policy ", 0) != 0 &&
          rest.rfind("comment ", 0) != 0)
        ++out.rules[chain];
      continue;
    }
    auto word = [&](const std::string& kw) -> std::string {
      if (rest.rfind(kw + " ", 0) != 0)
        return {};
      auto name = rest.substr(kw.size() + 1);
      auto sp = name.find(' ');
      return sp == std::string::npos ? name : name.substr(0, sp);
    };
    if (!word("table").empty())
      out.table = true;
    else if (auto c = word("chain"); !c.empty()) {
      out.chains.insert(c);
      out.rules[c];  // present, maybe empty
      if (rest.back() == '{')
        chain = c;
    } else if (auto s = word("set"); !s.empty())
      out.sets.insert(s);
    else if (auto m = word("map"); !m.empty())
      out.sets.insert(m);
  }
  return out;
}

bool nft_listing_matches(const service_map& desired, const nft_objects& existing,
                         const kernel_options& opts) {
  auto x = expect(desired, opts);
  if (!existing.table || existing.rules.size() != x.chains.size())
    return false;
  for (const auto& [name, n] : x.chains) {
    auto it = existing.rules.find(name);
    if (it == existing.rules.end() || it->second != n)
      return false;
  }
  return existing.sets == x.sets;
}

std::string render_nftables(const service_map& desired, const service_map* previous,
                            const nft_objects& existing, const kernel_options& opts) {
  renderer r(opts);
  auto statics = static_chain_defs(opts);
  std::vector<entry_def> defs;  // of the entries rendered
  std::set<std::string> stale_chains, stale_sets;
  if (!previous) {
    // Full: every chain flushed in one go (sets, and so affinity entries,
    // survive a table flush) and redefined in one block; strays deleted.
    for (const auto& e : desired.entries)
      defs.push_back(define_entry(e, opts));
    std::vector<set_def> sets;
    for (const auto& d : defs)
      sets.insert(sets.end(), d.sets.begin(), d.sets.end());
    r.declare(sets);
    r.out << "flush table " << r.table() << "\n";
    std::vector<const chain_def*> cs;
    for (const auto& c : statics)
      cs.push_back(&c);
    for (const auto& d : defs)
      for (const auto& c : d.chains)
        cs.push_back(&c);
    r.chains(cs);
    auto x = expect(desired, opts);
    for (const auto& c : existing.chains)
      if (!x.chains.count(c))
        stale_chains.insert(c);
    for (const auto& s : existing.sets)
      if (!x.sets.count(s))
        stale_sets.insert(s);
  } else {
    std::map<std::string, const service_port_entry*> before, after;
    for (const auto& e : previous->entries)
      before[entry_id(e)] = &e;
    for (const auto& e : desired.entries)
      after[entry_id(e)] = &e;
    for (const auto& e : desired.entries) {
      auto it = before.find(entry_id(e));
      if (it == before.end() || !(*it->second == e))
        defs.push_back(define_entry(e, opts));
    }
    std::vector<set_def> sets;
    std::vector<const chain_def*> cs;
    for (const auto& d : defs) {
      sets.insert(sets.end(), d.sets.begin(), d.sets.end());
      for (const auto& c : d.chains)
        cs.push_back(&c);
    }
    r.declare(sets);
    r.flush_chains(cs);
    r.chains(cs);
    // What the changed or removed entries owned and nothing owns now.
    auto x = expect(desired, opts);
    for (const auto& p : previous->entries) {
      auto it = after.find(entry_id(p));
      if (it != after.end() && *it->second == p)
        continue;
      auto d = define_entry(p, opts);
      for (const auto& c : d.chains)
        if (!x.chains.count(c.name))
          stale_chains.insert(c.name);
      for (const auto& s : d.sets)
        if (!x.sets.count(s.name))
          stale_sets.insert(s.name);
    }
  }
  r.elements(desired);
  r.remove(stale_chains, stale_sets);
  return r.out.str();
}

nftables_data_plane::nftables_data_plane(kernel_options opts) : opts_(std::move(opts)) {}

result<void> nftables_data_plane::apply(const service_map& desired, const service_map& previous) {
  bool known = applied_ && *applied_ == previous;
  bool full = full_next_ || !known;
  nft_objects existing;
  if (full) {
    // -t: sets without their elements (affinity sets can be large). With no
    // chain per endpoint the listing is small: a few thousand lines at
    // 1,000 Services.
    auto l = run_command({"nft", "-t", "list", "table", "ip", opts_.nft_table});
    if (!l)
      return l.err();
    if (l->exit_code == 0)
      existing = parse_nft_listing(l->out);
    // The periodic resync over a table this process wrote: when every
    // chain, its rule count and every set are as expected, only the maps
    // are refilled (they are what a hand edit most often breaks, and the
    // listing does not show their elements); otherwise everything is
    // rewritten. A new process always rewrites (the rules may be an older
    // proxy's).
    if (known && nft_listing_matches(desired, existing, opts_)) {
      full = false;
      ++verified_;
    }
  }
  last_text_ = render_nftables(desired, full ? nullptr : &previous, existing, opts_);
  last_full_ = full;
  auto r = run_checked({"nft", "-f", "-"}, last_text_);
  if (!r) {
    // What the kernel holds is unknown now (nothing, since nft -f is one
    // transaction, but do not build on it): the next sync is a full one.
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

result<void> nftables_data_plane::cleanup() {
  applied_.reset();
  full_next_ = true;
  if (!have_program("nft"))
    return {};
  auto r = run_command({"nft", "delete", "table", "ip", opts_.nft_table});
  if (!r)
    return r.err();
  if (r->exit_code != 0 && r->err.find("No such file") == std::string::npos)
    return error{errc::io, "nft delete table ip " + opts_.nft_table + ": " + r->err};
  return {};
}

bool nftables_available() {
  if (::geteuid() != 0 || !have_program("nft"))
    return false;
  auto r = run_command({"nft", "list", "tables"}, {}, std::chrono::seconds(5));
  return r && r->exit_code == 0;
}

}  // namespace deckhand::proxy
