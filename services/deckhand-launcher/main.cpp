// deckhand-launcher: `deckhand up`'s node launcher as a lean process. The
// launcher lives as long as the node, so `deckhand up` parses its flags and
// then execs this executable with the same flags; it links only the launcher
// (process supervision, config, status file) and none of the CLI's HTTP,
// TLS, archive and printer code. `--demo` runs `deckhand demo` as a child.

#include <CLI/CLI.hpp>

#include "deckhand/cli/launcher.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"

int main(int argc, char** argv) {
  using namespace deckhand::cli;
  up_options up;
  up.data_dir = deckhand::paths::default_data_dir();
  up_flags flags;
  {
    CLI::App app{"deckhand-launcher: runs a node's processes (what `deckhand up` runs)",
                 "deckhand up"};
    add_up_options(app, up, flags);
    CLI11_PARSE(app, argc, argv);
  }
  auto finished = finish_up_options(std::move(up), flags, self_bin_dir());
  if (!finished) {
    std::fprintf(stderr, "error: %s\n", finished.err().message.c_str());
    return 1;
  }
  finished->run_demo = demo_by_subprocess(self_bin_dir() / "deckhand");
  deckhand::log::init("up");
  return run_up(*finished);
}
