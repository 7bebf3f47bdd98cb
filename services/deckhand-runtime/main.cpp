/// deckhand-runtime: images, pod sandboxes and pod supervisors of one node.

#include <iostream>

#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/runtime/image_service.hpp"
#include "deckhand/runtime/runtime_service.hpp"

int main(int argc, char** argv) {
  using namespace deckhand;
  host::block_signals();
  CLI::App app{"deckhand-runtime: images, pod sandboxes and pod supervisors of a node"};
  host::common_options common;
  host::add_common_options(app, common);
  runtime::runtime_options opts;
  bool cleanup = false;
  app.add_option("--oci-runtime", opts.oci_runtime, "OCI runtime binary (runc or crun)");
  app.add_option("--supervisor-bin", opts.supervisor_bin,
                 "deckhand-pod-supervisor binary (default: next to this executable)");
  app.add_option("--supervisor-arg", opts.supervisor_args,
                 "extra argument for every pod supervisor (repeatable; use "
                 "--supervisor-arg=--flag for values that start with '-')")
      ->allow_extra_args(false);
  app.add_option("--backend", opts.backend,
                 "oci: containers through the OCI runtime; process: plain host processes, "
                 "no privileges (deckhand-process-oci); sim: simulated pods, no processes")
      ->check(CLI::IsMember({"oci", "process", "sim"}));
  app.add_option("--pod-cidr", opts.pod_cidr, "the node's pod CIDR (pod IPs come from it)");
  app.add_option("--bridge", opts.bridge_name,
                 "node bridge that pod veths attach to (holds the pod CIDR's first address)");
  app.add_option("--dns-nameserver", opts.dns_nameservers,
                 "nameserver for pods' resolv.conf (repeatable; default: the node's)")
      ->allow_extra_args(false);
  app.add_option("--dns-search", opts.dns_searches,
                 "search domain for pods' resolv.conf (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--resolv-conf", opts.resolv_conf, "resolv.conf that pods' copies are made from");
  app.add_option("--registry-credentials", opts.registry_credentials,
                 "registry credentials file (JSON: auths, and secrets by name for "
                 "imagePullSecrets)");
  app.add_option("--insecure-registry", opts.insecure_registries,
                 "registry HOST:PORT pulled from over plain HTTP (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--image-gc-high-threshold", opts.image_gc_high_threshold,
                 "image filesystem usage (percent) above which image GC runs")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--image-gc-low-threshold", opts.image_gc_low_threshold,
                 "image filesystem usage (percent) image GC brings usage below")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  std::string gc_period = "5m";
  app.add_option("--image-gc-period", gc_period,
                 "how often image GC checks usage (e.g. 30s, 5m; 0 disables it)")
      ->capture_default_str();
  app.add_flag("--cleanup-all", cleanup,
               "remove every pod (containers, mounts, netns, supervisors) and exit");
  if (int rc = host::parse(app, argc, argv); rc >= 0)
    return rc;
  opts.data_dir = common.data_dir;
  auto period = runtime::parse_duration(gc_period);
  if (!period) {
    std::cerr << "deckhand-runtime: --image-gc-period: " << period.err().message << "\n";
    return 2;
  }
  opts.image_gc_period = *period;
  if (opts.image_gc_low_threshold > opts.image_gc_high_threshold) {
    std::cerr << "deckhand-runtime: --image-gc-low-threshold must not exceed "
                 "--image-gc-high-threshold\n";
    return 2;
  }
  return runtime::run_runtime(opts, common, cleanup);
}
