/// The whole command line of deckhand-process-oci: global flags, then one
/// command.

#include "process_runtime_internal.hpp"

namespace deckhand::process_oci {

namespace {

void print_usage() {
  std::cout << program_name
            << ": runs OCI bundles as plain host processes (deckhand's process back-end)\n"
               "\nusage: "
            << program_name
            << " [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n"
               "\ncommands (runc's syntax):\n"
               "  create [--bundle DIR] [--pid-file FILE] ID\n"
               "  start ID\n"
               "  run [--detach] [--bundle DIR] [--pid-file FILE] ID\n"
               "  state ID\n"
               "  kill [--all] ID [SIGNAL]\n"
               "  delete [--force] ID\n"
               "  list [--format table|json] [--quiet]\n"
               "  exec [--cwd DIR] [--env K=V]... [--pid-file FILE] [--detach]\n"
               "       [--user UID[:GID]] ID CMD [ARG...]\n"
               "\nThe process runs on the host's filesystem (root.path is ignored), in\n"
               "process.cwd if that directory exists on the host, else in the bundle\n"
               "directory. No namespaces, mounts, cgroups or capabilities: no privileges\n"
               "needed. process.user applies only when run as root.\n";
}

}  // namespace

int process_runtime_main(int argc, char** argv) {
  // A reader that went away must not kill us half-way through a state change.
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::vector<option_def> globals{{"root", "", true},
                                        {"log", "", true},
                                        {"log-format", "", true},
                                        {"debug", "", false},
                                        {"systemd-cgroup", "", false},
                                        {"rootless", "", true},
                                        {"criu", "", true},
                                        {"version", "v", false},
                                        {"help", "h", false}};
  auto g = parse_options(args, globals);
  if (!g) {
    log_error(g.err().message);
    return 1;
  }
  if (g->has("version")) {
    std::cout << program_name << " version " << program_version << "\nspec: " << oci_version
              << "\n";
    return 0;
  }
  if (g->has("help") || g->positional.empty()) {
    print_usage();
    return g->positional.empty() && !g->has("help") ? 1 : 0;
  }
  unique_fd log_fd;
  if (g->has("log")) {
    auto fd = open_fd(g->get("log"), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (!fd) {
      log_error("open log file: " + fd.err().message);
      return 1;
    }
    log_fd = std::move(*fd);
    sink().fd = log_fd.get();
    sink().json_format = g->get("log-format", "text") == "json";
  }
  context ctx;
  ctx.root = g->has("root") ? fs::path(g->get("root")) : default_process_runtime_root();
  {
    std::error_code ec;
    ctx.root = fs::absolute(ctx.root, ec);
  }

  const std::string command = g->positional[0];
  const std::vector<std::string> rest(g->positional.begin() + 1, g->positional.end());
  result<int> code = 0;
  try {
    if (command == "create")
      code = cmd_create(ctx, rest, false);
    else if (command == "run")
      code = cmd_create(ctx, rest, true);
    else if (command == "start")
      code = cmd_start(ctx, rest);
    else if (command == "state")
      code = cmd_state(ctx, rest);
    else if (command == "kill")
      code = cmd_kill(ctx, rest);
    else if (command == "delete")
      code = cmd_delete(ctx, rest);
    else if (command == "list")
      code = cmd_list(ctx, rest);
    else if (command == "exec")
      code = cmd_exec(ctx, rest);
    else if (command == "pause" || command == "resume" || command == "ps" || command == "events" ||
             command == "update" || command == "checkpoint" || command == "restore" ||
             command == "spec" || command == "features")
      code =
          error{errc::unsupported, command + " is not supported by " + std::string(program_name)};
    else
      code = error{errc::invalid, "unknown command " + quote_text(command)};
  } catch (const std::exception& e) {
    code = error{errc::internal, e.what()};
  }
  std::cout.flush();
  if (!code) {
    log_error(code.err().message);
    return command == "exec" ? exec_failure : 1;
  }
  return *code;
}

}  // namespace deckhand::process_oci
