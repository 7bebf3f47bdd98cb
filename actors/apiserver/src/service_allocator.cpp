#include "deckhand/apiserver/service_allocator.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "deckhand/common/log.hpp"

namespace deckhand::apiserver {

using nlohmann::json;

namespace {

std::optional<std::uint32_t> parse_ipv4(const std::string& s) {
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1)
    return std::nullopt;
  return ntohl(a.s_addr);
}

std::string format_ipv4(std::uint32_t ip) {
  in_addr a{};
  a.s_addr = htonl(ip);
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::string str_of(const json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_string())
    return obj[key].get<std::string>();
  return {};
}

int int_of(const json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_number_integer())
    return obj[key].get<int>();
  return 0;
}

bool needs_node_ports(const json& spec) {
  std::string type = str_of(spec, "type");
  return type == "NodePort" || type == "LoadBalancer";
}

const json& spec_of(const json& svc) {
  static const json empty = json::object();
  if (svc.is_object() && svc.contains("spec") && svc["spec"].is_object())
    return svc["spec"];
  return empty;
}

/// The node ports a stored Service holds.
std::set<int> held_node_ports(const json& spec) {
  std::set<int> out;
  if (!needs_node_ports(spec) || !spec.contains("ports") || !spec["ports"].is_array())
    return out;
  for (const auto& p : spec["ports"])
    if (int n = int_of(p, "nodePort"); n > 0)
      out.insert(n);
  return out;
}

/// The size of Kubernetes' static band: the low part of a range that dynamic
/// allocation leaves alone while the rest has room.
std::uint64_t static_band(std::uint64_t size, std::uint64_t divisor, std::uint64_t cap) {
  return std::min<std::uint64_t>(std::max<std::uint64_t>(16, size / divisor), cap);
}

/// A free value in [0, size): first from a random point of the upper band
/// onwards, then anywhere. `used(i)` says whether offset i is taken.
template <typename Used>
std::optional<std::uint64_t> pick_free(std::uint64_t size, std::uint64_t band, std::uint64_t skip,
                                       std::mt19937_64& rng, Used used) {
  auto scan = [&](std::uint64_t from, std::uint64_t to) -> std::optional<std::uint64_t> {
    if (from >= to)
      return std::nullopt;
    std::uniform_int_distribution<std::uint64_t> d(from, to - 1);
    std::uint64_t start = d(rng);
    for (std::uint64_t n = 0; n < to - from; ++n) {
      std::uint64_t i = from + (start - from + n) % (to - from);
      if (!used(i))
        return i;
    }
    return std::nullopt;
  };
  if (band >= size)
    band = 0;
  if (auto i = scan(std::max(band, skip), size))
    return i;
  return scan(skip, std::min(band, size));
}

}  // namespace

result<std::pair<int, int>> parse_port_range(const std::string& text) {
  auto dash = text.find('-');
  try {
    std::size_t used = 0;
    int lo = 0, hi = 0;
    if (dash == std::string::npos) {
      lo = std::stoi(text, &used);
      if (used != text.size())
        throw std::invalid_argument(text);
      hi = lo;
    } else {
      std::string a = text.substr(0, dash), b = text.substr(dash + 1);
      lo = std::stoi(a, &used);
      if (used != a.size())
        throw std::invalid_argument(text);
      hi = std::stoi(b, &used);
      if (used != b.size())
        throw std::invalid_argument(text);
    }
    if (lo < 1 || hi > 65535 || lo > hi)
      throw std::invalid_argument(text);
    return std::pair<int, int>{lo, hi};
  } catch (const std::exception&) {
    return error{errc::invalid,
                 "invalid port range \"" + text + "\": want MIN-MAX with 1 <= MIN <= MAX <= 65535"};
  }
}

result<std::unique_ptr<service_allocator>>
service_allocator::create(service_allocator_options opts) {
  const std::string& cidr = opts.service_cidr;
  auto slash = cidr.find('/');
  std::optional<std::uint32_t> net;
  int bits = -1;
  if (slash != std::string::npos) {
    net = parse_ipv4(cidr.substr(0, slash));
    try {
      std::size_t used = 0;
      bits = std::stoi(cidr.substr(slash + 1), &used);
      if (used != cidr.size() - slash - 1)
        bits = -1;
    } catch (const std::exception&) {
      bits = -1;
    }
  }
  if (!net || bits < 0 || bits > 30)
    return error{errc::invalid, "invalid service CIDR \"" + cidr +
                                    "\": want an IPv4 network of at least 4 addresses, "
                                    "e.g. 10.96.0.0/12"};
  std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
  if ((*net & mask) != *net)
    return error{errc::invalid, "invalid service CIDR \"" + cidr +
                                    "\": host bits are set (the network is " +
                                    format_ipv4(*net & mask) + "/" + std::to_string(bits) + ")"};
  if (opts.node_port_min < 1 || opts.node_port_max > 65535 ||
      opts.node_port_min > opts.node_port_max)
    return error{errc::invalid, "invalid node port range " + std::to_string(opts.node_port_min) +
                                    "-" + std::to_string(opts.node_port_max)};
  // Network and broadcast addresses are never handed out.
  std::uint64_t total = std::uint64_t{1} << (32 - bits);
  return std::unique_ptr<service_allocator>(
      new service_allocator(std::move(opts), *net + 1, static_cast<std::uint32_t>(total - 2)));
}

service_allocator::service_allocator(service_allocator_options opts, std::uint32_t base,
                                     std::uint32_t size)
    : opts_(std::move(opts)),
      base_(base),
      size_(size),
      rng_(opts_.seed ? opts_.seed : std::random_device{}()) {}

std::int64_t service_allocator::ip_offset(std::uint32_t ip) const {
  if (ip < base_ || ip - base_ >= size_)
    return -1;
  return ip - base_;
}

std::optional<std::uint32_t> service_allocator::next_ip() {
  // Offset 0 (the range's first address) belongs to the `kubernetes` Service
  // in a real cluster; it is only handed out on request.
  auto i = pick_free(size_, static_band(size_, 16, 256), 1, rng_,
                     [&](std::uint64_t off) { return ips_.count(base_ + off) > 0; });
  if (!i)
    return std::nullopt;
  return static_cast<std::uint32_t>(base_ + *i);
}

std::optional<int> service_allocator::next_port() {
  std::uint64_t size = opts_.node_port_max - opts_.node_port_min + 1;
  auto i = pick_free(size, static_band(size, 32, 128), 0, rng_, [&](std::uint64_t off) {
    return ports_.count(opts_.node_port_min + static_cast<int>(off)) > 0;
  });
  if (!i)
    return std::nullopt;
  return opts_.node_port_min + static_cast<int>(*i);
}

void service_allocator::rebuild(const std::vector<json>& services) {
  std::lock_guard lock(mu_);
  ips_.clear();
  ports_.clear();
  for (const auto& svc : services) {
    const json& spec = spec_of(svc);
    std::string name = svc.value("/metadata/namespace"_json_pointer, std::string{}) + "/" +
                       svc.value("/metadata/name"_json_pointer, std::string{});
    if (auto ip = parse_ipv4(str_of(spec, "clusterIP"))) {
      if (ip_offset(*ip) < 0)
        log::get()->warn("msg=\"stored service has a cluster IP outside the service CIDR\" "
                         "service={} clusterIP={} cidr={}",
                         name, format_ipv4(*ip), opts_.service_cidr);
      else if (!ips_.insert(*ip).second)
        log::get()->error("msg=\"two stored services share a cluster IP\" service={} clusterIP={}",
                          name, format_ipv4(*ip));
    }
    for (int p : held_node_ports(spec)) {
      if (p < opts_.node_port_min || p > opts_.node_port_max)
        log::get()->warn("msg=\"stored service has a node port outside the range\" service={} "
                         "nodePort={}",
                         name, p);
      else if (!ports_.insert(p).second)
        log::get()->error("msg=\"two stored services share a node port\" service={} nodePort={}",
                          name, p);
    }
  }
}

result<service_allocation> service_allocator::prepare(const json* old, json& svc,
                                                      api::field_errors& causes) {
  std::lock_guard lock(mu_);
  service_allocation a;
  auto give_back = [&] {
    for (auto ip : a.taken_ips)
      ips_.erase(ip);
    for (int p : a.taken_ports)
      ports_.erase(p);
  };
  if (!svc.contains("spec") || !svc["spec"].is_object())
    return a;
  json& spec = svc["spec"];
  const json& old_spec = old ? spec_of(*old) : spec_of(json());
  std::string type = str_of(spec, "type");

  // Cluster IP.
  std::string old_ip = str_of(old_spec, "clusterIP");
  std::string want = str_of(spec, "clusterIP");
  if (type == "ExternalName") {
    // No IP; one the old object held goes back below.
  } else if (want.empty()) {
    auto ip = next_ip();
    if (!ip)
      return error{errc::internal,
                   "Internal error occurred: failed to allocate a serviceIP: range is full"};
    ips_.insert(*ip);
    a.taken_ips.push_back(*ip);
    want = format_ipv4(*ip);
    spec["clusterIP"] = want;
    spec["clusterIPs"] = json::array({want});
    spec["ipFamilies"] = json::array({"IPv4"});
    spec["ipFamilyPolicy"] = "SingleStack";
  } else if (want != "None" && want != old_ip) {
    auto ip = parse_ipv4(want);
    std::string value = "[]string{" + json(want).dump() + "}";
    if (!ip || ip_offset(*ip) < 0) {
      causes.push_back({"Invalid value", "spec.clusterIPs",
                        value + ": failed to allocate IP " + want + ": the provided IP (" + want +
                            ") is not in the valid range. The range of valid IPs is " +
                            opts_.service_cidr});
    } else if (ips_.count(*ip)) {
      causes.push_back(
          {"Invalid value", "spec.clusterIPs",
           value + ": failed to allocate IP " + want + ": provided IP is already allocated"});
    } else {
      ips_.insert(*ip);
      a.taken_ips.push_back(*ip);
    }
  }
  if (auto ip = parse_ipv4(old_ip); ip && (type == "ExternalName" || old_ip != want))
    a.dropped_ips.push_back(*ip);

  // Node ports.
  std::set<int> old_ports = held_node_ports(old_spec);
  std::set<int> kept;
  if (needs_node_ports(spec) && spec.contains("ports") && spec["ports"].is_array()) {
    json& ports = spec["ports"];
    // An update that leaves a nodePort out keeps the one the same port had.
    if (!old_ports.empty())
      for (auto& p : ports) {
        if (!p.is_object() || int_of(p, "nodePort") != 0)
          continue;
        for (const auto& op : old_spec["ports"])
          if (int_of(op, "port") == int_of(p, "port") &&
              str_of(op, "protocol") == str_of(p, "protocol") && int_of(op, "nodePort") > 0) {
            p["nodePort"] = int_of(op, "nodePort");
            break;
          }
      }
    // Requested ports first, so that a dynamic pick cannot take one of them.
    for (std::size_t i = 0; i < ports.size(); ++i) {
      int np = int_of(ports[i], "nodePort");
      if (np == 0 || kept.count(np))
        continue;  // the same port under another protocol is fine
      if (old_ports.count(np)) {
        kept.insert(np);
        continue;
      }
      std::string field = "spec.ports[" + std::to_string(i) + "].nodePort";
      if (np < opts_.node_port_min || np > opts_.node_port_max) {
        causes.push_back({"Invalid value", field,
                          std::to_string(np) +
                              ": provided port is not in the valid range. The range of valid "
                              "ports is " +
                              std::to_string(opts_.node_port_min) + "-" +
                              std::to_string(opts_.node_port_max)});
      } else if (ports_.count(np)) {
        causes.push_back(
            {"Invalid value", field, std::to_string(np) + ": provided port is already allocated"});
      } else {
        ports_.insert(np);
        a.taken_ports.push_back(np);
        kept.insert(np);
      }
    }
    if (causes.empty())
      for (auto& p : ports) {
        if (!p.is_object() || int_of(p, "nodePort") != 0)
          continue;
        auto np = next_port();
        if (!np) {
          give_back();
          return error{errc::internal,
                       "Internal error occurred: failed to allocate a nodePort: range is full"};
        }
        ports_.insert(*np);
        a.taken_ports.push_back(*np);
        kept.insert(*np);
        p["nodePort"] = *np;
      }
  }
  for (int p : old_ports)
    if (!kept.count(p))
      a.dropped_ports.push_back(p);

  if (!causes.empty()) {
    give_back();
    return error{errc::invalid, "allocation failed"};
  }
  return a;
}

void service_allocator::commit(const service_allocation& a) {
  std::lock_guard lock(mu_);
  for (auto ip : a.dropped_ips)
    ips_.erase(ip);
  for (int p : a.dropped_ports)
    ports_.erase(p);
}

void service_allocator::abort(const service_allocation& a) {
  std::lock_guard lock(mu_);
  for (auto ip : a.taken_ips)
    ips_.erase(ip);
  for (int p : a.taken_ports)
    ports_.erase(p);
}

void service_allocator::release(const json& svc) {
  std::lock_guard lock(mu_);
  const json& spec = spec_of(svc);
  if (auto ip = parse_ipv4(str_of(spec, "clusterIP")))
    ips_.erase(*ip);
  for (int p : held_node_ports(spec))
    ports_.erase(p);
}

bool service_allocator::ip_in_use(const std::string& ip) const {
  auto v = parse_ipv4(ip);
  std::lock_guard lock(mu_);
  return v && ips_.count(*v);
}

bool service_allocator::node_port_in_use(int port) const {
  std::lock_guard lock(mu_);
  return ports_.count(port) > 0;
}

std::size_t service_allocator::ips_in_use() const {
  std::lock_guard lock(mu_);
  return ips_.size();
}

std::size_t service_allocator::node_ports_in_use() const {
  std::lock_guard lock(mu_);
  return ports_.size();
}

}  // namespace deckhand::apiserver
