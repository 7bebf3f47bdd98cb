#include <caf/all.hpp>

#include "deckhand/runtime/runtime_api.hpp"
#include "deckhand/runtime/runtime_service.hpp"

namespace deckhand::runtime {

using transport::inbound_request;

namespace {

caf::behavior front(caf::event_based_actor*, transport::bridge* bus, runtime_actors to) {
  return {
      [=](inbound_request& req) {
        if (carries<wire::image_import_request>(req) || carries<wire::image_list_request>(req) ||
            carries<wire::image_pull_request>(req) || carries<wire::image_remove_request>(req))
          caf::anon_send(to.images, std::move(req));
        else if (carries<wire::run_pod_request>(req) || carries<wire::stop_pod_request>(req) ||
                 carries<wire::remove_pod_request>(req) ||
                 carries<wire::list_sandboxes_request>(req))
          caf::anon_send(to.sandboxes, std::move(req));
        else if (carries<wire::exec_request>(req) || carries<wire::container_stats_request>(req))
          caf::anon_send(to.containers, std::move(req));
        else
          bus->reply_error(req, {errc::invalid, "the runtime does not serve message type " +
                                                    std::to_string(req.env.hdr.type)});
      },
  };
}

}  // namespace

caf::actor spawn_front(caf::actor_system& sys, transport::bridge& bus, const runtime_actors& to) {
  return sys.spawn(front, &bus, to);
}

}  // namespace deckhand::runtime
