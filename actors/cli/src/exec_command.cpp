#include "deckhand/cli/exec_command.hpp"

#include <iostream>
#include <iterator>

#include "deckhand/cli/node_client.hpp"

namespace deckhand::cli {

namespace {

/// How long the CLI waits for a command without a --timeout: the transport
/// needs a deadline, a user's shell session does not.
constexpr std::chrono::hours unbounded_wait{24};

}  // namespace

int exec_command(const exec_options& opts, io_streams io) {
  if (opts.command.empty()) {
    io.err << "error: you must specify at least one command for the container\n";
    return 1;
  }
  auto pod = opts.pod;
  if (auto slash = pod.find('/'); slash != std::string::npos) {
    auto kind = pod.substr(0, slash);
    if (kind != "pod" && kind != "pods" && kind != "po") {
      io.err << "error: cannot exec into a " << kind << "\n";
      return 1;
    }
    pod = pod.substr(slash + 1);
  }
  wire::exec_request req;
  req.namespace_ = opts.node.ns;
  req.name = pod;
  req.container = opts.container;
  req.command = opts.command;
  req.timeout_ms = opts.timeout.count();
  if (opts.pass_stdin)
    req.stdin_data.assign(std::istreambuf_iterator<char>(io.in), std::istreambuf_iterator<char>());

  node_client node(opts.node.data_dir);
  auto wait = opts.timeout.count() > 0
                  ? opts.timeout + std::chrono::seconds(30)
                  : std::chrono::duration_cast<std::chrono::milliseconds>(unbounded_wait);
  auto rep = node.request<wire::exec_reply>("runtime", req, wait);
  if (!rep) {
    io.err << "error: " << rep.err().message << "\n";
    return 1;
  }
  io.out << rep->stdout_data << std::flush;
  io.err << rep->stderr_data;
  if (rep->truncated)
    io.err << "warning: output was cut at the node's limit\n";
  if (rep->timed_out) {
    io.err << "error: command timed out after " << opts.timeout.count() << "ms\n";
    return rep->exit_code != 0 ? rep->exit_code : 1;
  }
  if (rep->exit_code != 0)
    io.err << "command terminated with exit code " << rep->exit_code << "\n";
  return rep->exit_code;
}

}  // namespace deckhand::cli
