/// deckhand-runtime: images, pod sandboxes and pod supervisors of one node.
/// Everything lives in deckhand_runtime; this is the wiring.

#include <iostream>

#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/runtime/runtime_flags.hpp"
#include "deckhand/runtime/runtime_service.hpp"

int main(int argc, char** argv) {
  using namespace deckhand;
  host::block_signals();
  CLI::App app{"deckhand-runtime: images, pod sandboxes and pod supervisors of a node"};
  host::common_options common;
  host::add_common_options(app, common);
  runtime::runtime_options opts;
  runtime::runtime_flags flags;
  runtime::add_runtime_options(app, opts, flags);
  if (int rc = host::parse(app, argc, argv); rc >= 0)
    return rc;
  opts.data_dir = common.data_dir;
  if (auto err = runtime::finish_runtime_options(opts, flags)) {
    std::cerr << "deckhand-runtime: " << err.message << "\n";
    return 2;
  }
  return runtime::run_runtime(opts, common, flags.cleanup_all);
}
