// deckhand-pod-supervisor: one per pod, the parent of the pod's containers.
// Everything lives in deckhand_supervisor; this is the wiring.
//
// `deckhand-pod-supervisor --zygote SOCKET PADDING` is the fork server the
// runtime keeps running: each pod's supervisor is forked from it instead of
// exec'd (see host/zygote.hpp), which saves the dynamic loading at every pod
// start and shares the relocated libraries between all supervisors.

#include <malloc.h>

#include "deckhand/common/log.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/host/zygote.hpp"
#include "deckhand/supervisor/runner.hpp"
#include "deckhand/supervisor/service.hpp"

namespace {

int supervisor_main(int argc, char** argv) {
  // Hundreds of these run per node: one malloc arena per thread would keep
  // ~64 kB of each thread's first allocations private for nothing.
  ::mallopt(M_ARENA_MAX, 1);
  // Give freed memory back at once instead of keeping up to 128 kB of free
  // heap top per process "for later".
  ::mallopt(M_TRIM_THRESHOLD, 0);
  ::mallopt(M_TOP_PAD, 0);
  // Before any thread exists, so that every thread inherits the mask.
  deckhand::host::block_signals();
  deckhand::supervisor::block_sigchld();

  deckhand::host::common_options common;
  deckhand::supervisor::service_options opts;
  {
    // Scoped: the parser's option table (~15 kB of heap) is not needed once
    // the flags are read, and hundreds of supervisors would each keep one.
    CLI::App app{"deckhand pod supervisor: runs and restarts one pod's containers"};
    deckhand::host::add_common_options(app, common);
    deckhand::supervisor::add_service_options(app, opts);
    if (int rc = deckhand::host::parse(app, argc, argv); rc >= 0)
      return rc;
  }
  deckhand::log::init("pod-supervisor", common.log_level, common.log_json);
  return deckhand::supervisor::run(common, opts);
}

}  // namespace

int main(int argc, char** argv) {
  if (deckhand::host::is_zygote_invocation(argc, argv))
    return deckhand::host::run_zygote(argc, argv, supervisor_main);
  return supervisor_main(argc, argv);
}
