#include "deckhand/runtime/runtime_flags.hpp"

#include "deckhand/runtime/image_service.hpp"
#include "deckhand/runtime/sandbox_backend.hpp"

namespace deckhand::runtime {

void add_runtime_options(CLI::App& app, runtime_options& opts, runtime_flags& flags) {
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
      ->check(CLI::IsMember(sandbox_backend_names()));
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
  app.add_option("--image-gc-period", flags.image_gc_period,
                 "how often image GC checks usage (e.g. 30s, 5m; 0 disables it)")
      ->capture_default_str();
  app.add_flag("--cleanup-all", flags.cleanup_all,
               "remove every pod (containers, mounts, netns, supervisors) and exit");
}

error finish_runtime_options(runtime_options& opts, const runtime_flags& flags) {
  auto period = parse_duration(flags.image_gc_period);
  if (!period)
    return {errc::invalid, "--image-gc-period: " + period.err().message};
  opts.image_gc_period = *period;
  if (opts.image_gc_low_threshold > opts.image_gc_high_threshold)
    return {errc::invalid, "--image-gc-low-threshold must not exceed --image-gc-high-threshold"};
  return {};
}

}  // namespace deckhand::runtime
