#include <caf/all.hpp>

#include "deckhand/runtime/container_process.hpp"
#include "deckhand/runtime/exec.hpp"
#include "deckhand/runtime/runtime_api.hpp"
#include "deckhand/runtime/sandbox_service.hpp"
#include "run_blocking.hpp"

namespace deckhand::runtime {

using transport::inbound_request;

namespace {

caf::behavior container_service(caf::event_based_actor* self, transport::bridge* bus,
                                runtime_options opts) {
  return {
      [=](inbound_request& req) {
        auto& sys = self->system();
        if (carries<wire::exec_request>(req)) {
          auto r = responder<wire::exec_request>::decode(*bus, std::move(req));
          if (!r)
            return;
          // The command may run for long: a worker thread of its own.
          run_blocking(
              sys, [opts, r = std::move(*r)] { r.answer(exec_in_container(opts, r.request())); });
        } else if (carries<wire::container_stats_request>(req)) {
          auto r = responder<wire::container_stats_request>::decode(*bus, std::move(req));
          if (!r)
            return;
          run_blocking(sys, [opts, r = std::move(*r)] {  // cgroup file reads
            wire::container_stats_reply rep;
            rep.stats = collect_container_stats(opts, r.request().uid);
            r.reply(rep);
          });
        } else {
          bus->reply_error(req,
                           {errc::invalid, "the container service does not serve message type " +
                                               std::to_string(req.env.hdr.type)});
        }
      },
  };
}

}  // namespace

caf::actor spawn_container_service(caf::actor_system& sys, transport::bridge& bus,
                                   const runtime_options& opts) {
  return sys.spawn(container_service, &bus, opts);
}

}  // namespace deckhand::runtime
