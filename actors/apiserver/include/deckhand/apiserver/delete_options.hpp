#pragma once

/// DeleteOptions as a DELETE request carries them (Kubernetes'
/// metav1.DeleteOptions): query parameters first, then the JSON body, whose
/// fields win, as the Go API server decodes them. kubectl sends
/// `{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":N,
/// "propagationPolicy":"Background"}`; curl users write `?gracePeriodSeconds=N`.

#include <string>
#include <string_view>

#include "deckhand/apiserver/registry.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

struct delete_request {
  delete_options options;
  /// dryRun=All: answer as if deleted, change nothing.
  bool dry_run = false;
};

/// Parses a DELETE's options: `grace_query` and `dry_run_query` are the raw
/// query parameters (empty: absent), `body` the request body (empty: none).
/// `errc::invalid` (a 400) for a body that is not a JSON object, a
/// gracePeriodSeconds that is not an integer, or a dryRun other than All.
result<delete_request> parse_delete_options(std::string_view body, const std::string& grace_query,
                                            const std::string& dry_run_query = {});

}  // namespace deckhand::apiserver
