// deckhand: the CLI and node launcher. Everything lives in deckhand_cli so
// that the commands can be tested without a process.

#include "deckhand/cli/commands.hpp"

int main(int argc, char** argv) { return deckhand::cli::run_main(argc, argv); }
