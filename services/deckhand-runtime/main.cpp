/// deckhand-runtime: images, pod sandboxes and pod supervisors of one node.

#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
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
  app.add_flag("--cleanup-all", cleanup,
               "remove every pod (containers, mounts, netns, supervisors) and exit");
  if (int rc = host::parse(app, argc, argv); rc >= 0)
    return rc;
  opts.data_dir = common.data_dir;
  return runtime::run_runtime(opts, common, cleanup);
}
