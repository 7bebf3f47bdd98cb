#include "deckhand/runtime/runtime_service.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <iostream>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/zygote.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/runtime/image_service.hpp"
#include "deckhand/runtime/supervisor_manager.hpp"
#include "deckhand/runtime/supervisor_process.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

runtime_actors spawn_runtime(caf::actor_system& sys, transport::bridge& bus,
                             const runtime_options& opts, const sandbox_backend& backend,
                             std::shared_ptr<image::image_store> images,
                             const std::vector<recovered_pod>& recovered) {
  runtime_actors a;
  a.supervisors = spawn_supervisor_manager(sys, opts);
  for (const auto& r : recovered) {
    if (r.action == startup_action::adopt)
      caf::anon_send(a.supervisors, supervisor_adopt_atom::value, r.uid,
                     static_cast<int64_t>(r.supervisor_pid));
    else if (r.action == startup_action::start_supervisor)
      caf::anon_send(a.supervisors, supervisor_adopt_atom::value, r.uid, int64_t{0});
  }
  a.images = spawn_image_service(sys, make_image_context(bus, opts, images));
  auto served = backend.spawn(sys, bus, opts, images, a.supervisors);
  a.sandboxes = served.sandboxes;
  a.containers = served.containers;
  a.front = spawn_front(sys, bus, a);
  return a;
}

int cleanup_all(const runtime_options& opts) {
  int failures = 0;
  for (const auto& uid : pod_uids_on_disk(opts)) {
    if (auto err = remove_sandbox(opts, uid)) {
      log::get()->error("msg=\"cleanup failed\" uid={} error=\"{}\"", uid, err.message);
      ++failures;
    }
  }
  // Containers whose pod directory is already gone still belong to this
  // node's runc root.
  std::error_code ec;
  if (fs::exists(paths::runc_root(opts.data_dir), ec)) {
    oci::runc rc(paths::runc_root(opts.data_dir), opts.oci_runtime);
    if (auto list = rc.list())
      for (const auto& c : *list)
        if (auto r = rc.remove(c.id, true); !r)
          ++failures;
  }
  // Addresses, veths and mounts whose pod directory is already gone.
  auto left = pod_uids_on_disk(opts);
  sweep_orphans(opts, {left.begin(), left.end()});
  return failures;
}

int run_runtime(const runtime_options& given, const host::common_options& common,
                bool cleanup_all_and_exit) {
  log::init("runtime", common.log_level, common.log_json);
  auto lg = log::get();
  auto backend = make_sandbox_backend(given.backend);
  if (!backend) {
    std::cerr << "deckhand-runtime: --backend: " << backend.err().message << "\n";
    return 2;
  }
  runtime_options opts = given;
  (*backend)->configure(opts);
  if (cleanup_all_and_exit) {
    int failures = cleanup_all(opts);
    lg->info("msg=\"cleanup done\" failures={}", failures);
    return failures == 0 ? 0 : 1;
  }
  std::error_code ec;
  for (const auto& d : {paths::run_dir(opts.data_dir), paths::pods_state_dir(opts.data_dir),
                        paths::runc_root(opts.data_dir)}) {
    fs::create_directories(d, ec);
    if (ec) {
      std::cerr << "deckhand-runtime: cannot create " << d << ": " << ec.message() << "\n";
      return 1;
    }
  }
  auto store = image::image_store::open(paths::image_dir(opts.data_dir));
  if (!store) {
    std::cerr << "deckhand-runtime: image store: " << store.err().message << "\n";
    return 1;
  }
  std::shared_ptr<image::image_store> images(std::move(*store));
  auto recovered = (*backend)->recover(opts);

  // The supervisor zygote: from the main thread, which lives as long as the
  // process (it dies with the thread that started it).
  runtime_options run_opts = opts;
  pid_t zygote_pid = 0;
  if ((*backend)->runs_supervisors()) {
    auto sock = paths::run_dir(opts.data_dir) / "supervisor-zygote.sock";
    if (auto z = host::start_zygote(supervisor_binary(opts), sock)) {
      zygote_pid = *z;
      run_opts.supervisor_zygote = sock;
    } else {
      lg->warn("msg=\"no supervisor zygote; supervisors are exec'd\" error=\"{}\"",
               z.err().message);
    }
  }

  host::component comp("runtime", common);
  auto actors = spawn_runtime(comp.system(), comp.bus(), run_opts, **backend, images, recovered);
  auto endpoint = paths::ipc_endpoint(opts.data_dir, "runtime");
  auto router = comp.bus().bind_router(endpoint, host::forward_to(actors.front));
  int rc = 0;
  if (!router) {
    std::cerr << "deckhand-runtime: cannot bind " << endpoint << ": " << router.err().message
              << "\n";
    rc = 1;
  } else {
    comp.bus().start();
    lg->info("msg=\"ready\" endpoint={} pods={} supervisor={}", endpoint, recovered.size(),
             supervisor_binary(opts).string());
    comp.wait_for_stop();
  }
  for (const auto& a :
       {actors.front, actors.images, actors.sandboxes, actors.containers, actors.supervisors})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  // The detached manager's thread ends only once no handle refers to it.
  actors = runtime_actors{};
  comp.shutdown();
  if (zygote_pid > 0) {
    ::kill(zygote_pid, SIGTERM);
    int st;
    ::waitpid(zygote_pid, &st, 0);
  }
  return rc;
}

}  // namespace deckhand::runtime
