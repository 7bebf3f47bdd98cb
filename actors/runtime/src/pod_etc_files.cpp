// A pod's /etc/hosts and /etc/resolv.conf, as the kubelet writes them.

#include <sstream>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"

namespace deckhand::runtime {

std::string render_hosts_file(const std::string& pod_ip, const std::string& hostname) {
  // The kubelet's managed hosts file, line for line.
  std::string out = "# Kubernetes-managed hosts file.\n"
                    "127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n"
                    "fe00::0\tip6-localnet\n"
                    "fe00::0\tip6-mcastprefix\n"
                    "fe00::1\tip6-allnodes\n"
                    "fe00::2\tip6-allrouters\n";
  if (!pod_ip.empty())
    out += pod_ip + "\t" + hostname + "\n";
  return out;
}

std::string render_resolv_conf(const runtime_options& opts, bool host_network) {
  std::string out;
  if (!opts.dns_nameservers.empty()) {
    for (const auto& ns : opts.dns_nameservers)
      out += "nameserver " + ns + "\n";
  } else {
    auto text = fsutil::read_file(opts.resolv_conf, 1u << 20);
    std::istringstream in(text ? *text : std::string());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string key, value;
      f >> key >> value;
      if (key == "search" && !opts.dns_searches.empty())
        continue;
      // The node's loopback resolver (systemd-resolved, dnsmasq) is out of
      // reach from a pod's own network namespace.
      if (key == "nameserver" && !host_network && (value.rfind("127.", 0) == 0 || value == "::1"))
        continue;
      out += line + "\n";
    }
  }
  if (!opts.dns_searches.empty()) {
    out += "search";
    for (const auto& s : opts.dns_searches)
      out += " " + s;
    out += "\n";
  }
  return out;
}

}  // namespace deckhand::runtime
