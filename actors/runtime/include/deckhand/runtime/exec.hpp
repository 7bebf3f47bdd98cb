#pragma once

/// `exec` into a pod's container: the runtime's side of wire::exec_request.
/// Blocking (runc, the command itself): call it on a worker thread.

#include <cstddef>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/wire.hpp"
#include "deckhand/runtime/options.hpp"

namespace deckhand::runtime {

/// Largest output kept per stream, whatever the request asks: both streams
/// together must fit in one message.
constexpr std::size_t max_exec_output = 4u << 20;

/// Finds the pod (by `uid`, or by `namespace_` (default "default") and
/// `name`; of several pods with that name the newest that is not stopping)
/// and its container (`container`, or the pod's first), and runs `command`
/// in it with `runc exec`. Errors: `errc::invalid` for an empty command or no
/// pod identity, `errc::not_found` for an unknown pod or container,
/// `errc::conflict` for a container that is not running, runc's message when
/// the command cannot be started. A command that runs is a reply, whatever
/// its exit code.
result<wire::exec_reply> exec_in_container(const runtime_options& opts,
                                           const wire::exec_request& req);

}  // namespace deckhand::runtime
