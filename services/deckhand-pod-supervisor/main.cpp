// deckhand-pod-supervisor: one per pod, the parent of the pod's containers.
// Everything lives in deckhand_supervisor; this is the wiring.

#include "deckhand/common/log.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/supervisor/runner.hpp"
#include "deckhand/supervisor/service.hpp"

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask.
  deckhand::host::block_signals();
  deckhand::supervisor::block_sigchld();

  CLI::App app{"deckhand pod supervisor: runs and restarts one pod's containers"};
  deckhand::host::common_options common;
  deckhand::supervisor::service_options opts;
  deckhand::host::add_common_options(app, common);
  deckhand::supervisor::add_service_options(app, opts);
  if (int rc = deckhand::host::parse(app, argc, argv); rc >= 0)
    return rc;
  deckhand::log::init("pod-supervisor", common.log_level, common.log_json);
  return deckhand::supervisor::run(common, opts);
}
