// libFuzzer target for the single inbound decode path: header frame, size
// limits, and the typed msgpack body decoder of every message type. Any crash,
// sanitizer report or leak is a bug; errors are the expected outcome.
#include <cstddef>
#include <cstdint>
#include <string>

#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/messages/wire.hpp"

using namespace deckhand;

namespace {

template <class T>
void try_decode(const wire::envelope& env) {
  auto r = wire::decode_as<T>(env);
  if (r) {
    // Whatever decodes must re-encode and decode to the same thing.
    auto again = wire::decode_body<T>(wire::encode_body(*r));
    if (!again || wire::to_json(*again) != wire::to_json(*r))
      __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < wire::header_size)
    return 0;
  wire::decode_limits limits;
  limits.max_body = 1u << 16;
  auto env = wire::decode_frames(data, wire::header_size, data + wire::header_size,
                                 size - wire::header_size, limits);
  if (!env)
    return 0;
  // Try the announced type and, to cover every decoder, the type picked by
  // the low bits of the correlation id.
  switch (env->hdr.correlation_id % 20) {
  case 0: try_decode<wire::run_pod_request>(*env); break;
  case 1: try_decode<wire::list_reply>(*env); break;
  case 2: try_decode<wire::watch_event>(*env); break;
  case 3: try_decode<wire::pod_status_update>(*env); break;
  case 4: try_decode<wire::node_heartbeat>(*env); break;
  case 5: try_decode<wire::list_sandboxes_reply>(*env); break;
  case 6: try_decode<wire::error_reply>(*env); break;
  case 7: try_decode<wire::pong>(*env); break;
  case 8: try_decode<wire::stop_pod_request>(*env); break;
  case 9: try_decode<wire::image_import_request>(*env); break;
  case 10: try_decode<wire::pod_status_notify>(*env); break;
  case 11: try_decode<wire::image_pull_request>(*env); break;
  case 12: try_decode<wire::exec_request>(*env); break;
  case 13: try_decode<wire::exec_reply>(*env); break;
  case 14: try_decode<wire::container_stats_reply>(*env); break;
  case 15: try_decode<wire::event_report>(*env); break;
  case 16: try_decode<wire::feed_heartbeat>(*env); break;
  case 17: try_decode<wire::lease_renew>(*env); break;
  case 18: try_decode<wire::mirror_pod_update>(*env); break;
  default: try_decode<wire::list_request>(*env); break;
  }
  auto any = wire::decode_body<wire::pod>(env->body, limits);
  (void)any;
  return 0;
}
