#pragma once

/// `deckhand image pull` and `deckhand image rm`: requests to the node's
/// runtime; pull progress comes from the runtime's PUB socket
/// (paths::runtime_pub_endpoint, topic "pull").

#include <string>
#include <vector>

#include "deckhand/cli/commands.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::cli {

struct image_pull_options {
  node_options node;
  std::string ref;
  std::vector<std::string> secrets;  ///< names in the runtime's credentials file
  /// Progress redrawn on one line with \r (stderr is a terminal); otherwise
  /// one line per phase.
  bool tty = false;
};

/// Pulls `ref` through the runtime, showing progress on `err`, and prints the
/// image id on `out`. Non-zero on failure (the runtime's error on `err`).
int image_pull_command(const image_pull_options& opts, io_streams io);

/// Removes each image (name or id); an image a pod uses is refused. Prints
/// `Untagged: REF` and `Deleted: ID` lines like `docker rmi`; non-zero when
/// any removal failed.
int image_remove_command(const node_options& opts, const std::vector<std::string>& refs,
                         io_streams io);

/// The terminal line for one progress report: phase, a bar and byte counts
/// when the total is known (`width` columns for the bar).
std::string format_pull_progress(const wire::image_pull_progress& p, int width = 30);

}  // namespace deckhand::cli
