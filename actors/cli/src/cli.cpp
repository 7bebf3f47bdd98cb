/// The command line of `deckhand`: CLI11 definitions and dispatch.

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <string_view>
#include <utility>

#include <CLI/CLI.hpp>

#include "deckhand/cli/commands.hpp"
#include "deckhand/cli/demo.hpp"
#include "deckhand/cli/describe.hpp"
#include "deckhand/cli/exec_command.hpp"
#include "deckhand/cli/image_commands.hpp"
#include "deckhand/cli/launcher.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"

#include "demo_manifest_data.hpp"

namespace deckhand::cli {

std::string_view demo_manifest() { return demo_manifest_yaml; }

namespace {

void add_data_dir(CLI::App* sub, std::filesystem::path& data_dir) {
  sub->add_option("--data-dir", data_dir, "The node's data directory")->capture_default_str();
}

CLI::Option* add_namespace(CLI::App* sub, node_options& node) {
  return sub->add_option("-n,--namespace", node.ns, "The namespace")->capture_default_str();
}

/// Flags that, as with kubectl's `--namespace`, may come before the command
/// as well as after it; `true` when the flag takes a value.
constexpr std::pair<std::string_view, bool> global_flags[] = {
    {"--data-dir", true}, {"-n", true},  {"--namespace", true},      {"-o", true},
    {"--output", true},   {"-A", false}, {"--all-namespaces", false}};

/// Number of tokens at `args[i]` that make up one global flag (with its
/// value), or 0 when `args[i]` is not one.
size_t global_flag_tokens(const std::vector<std::string>& args, size_t i) {
  std::string_view arg = args[i];
  for (auto [name, takes_value] : global_flags) {
    if (arg == name)
      return takes_value && i + 1 < args.size() ? 2 : 1;
    bool is_long = name.starts_with("--");
    if (takes_value && arg.starts_with(name) &&
        (is_long ? arg.size() > name.size() && arg[name.size()] == '=' : arg.size() > name.size()))
      return 1;
  }
  return 0;
}

/// Moves the global flags given before the command to after it (before a
/// `--`, which ends the command's own flags), where each command declares
/// the ones it accepts. The command's name then comes first, as `up` needs
/// when it hands its flags to deckhand-launcher.
std::vector<std::string> hoist_global_flags(const std::vector<std::string>& args) {
  std::vector<std::string> hoisted;
  size_t i = 0;
  while (i < args.size()) {
    auto n = global_flag_tokens(args, i);
    if (n == 0)
      break;
    hoisted.insert(hoisted.end(), args.begin() + static_cast<std::ptrdiff_t>(i),
                   args.begin() + static_cast<std::ptrdiff_t>(i + n));
    i += n;
  }
  if (hoisted.empty() || i == args.size())
    return args;
  std::vector<std::string> result(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  auto dashes = std::find(result.begin(), result.end(), "--");
  result.insert(dashes, hoisted.begin(), hoisted.end());
  return result;
}

}  // namespace

int run(const std::vector<std::string>& given_args, io_streams io) {
  const auto args = hoist_global_flags(given_args);
  CLI::App app{"deckhand: a Kubernetes worker node", "deckhand"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every command");

  auto default_dir = paths::default_data_dir();

  // up
  up_options up;
  up.data_dir = default_dir;
  up_flags up_args;
  auto* up_cmd = app.add_subcommand("up", "Start a node and keep its processes running");
  add_up_options(*up_cmd, up, up_args);

  // demo (hidden): what `deckhand up --demo` runs once the node is up.
  std::filesystem::path demo_dir = default_dir;
  auto* demo_cmd = app.add_subcommand("demo", "Import the demo image and apply the demo pod");
  demo_cmd->group("");
  add_data_dir(demo_cmd, demo_dir);

  // apply
  node_options apply_node{default_dir};
  std::vector<std::string> apply_files;
  auto* apply_cmd = app.add_subcommand("apply", "Create or update objects from manifests");
  add_data_dir(apply_cmd, apply_node.data_dir);
  auto* apply_ns = add_namespace(apply_cmd, apply_node);
  apply_cmd->add_option("-f,--filename", apply_files, "Manifest file, directory or -")->required();

  // get
  get_options get;
  get.node.data_dir = default_dir;
  auto* get_cmd = app.add_subcommand("get", "Show pods, services, endpoints or endpointslices");
  add_data_dir(get_cmd, get.node.data_dir);
  add_namespace(get_cmd, get.node);
  get_cmd
      ->add_option("resource", get.resource,
                   "pods|po|services|svc|endpoints|ep|endpointslices|events[/NAME], or a "
                   "comma list (svc,ep)")
      ->required();
  get_cmd->add_option("names", get.names, "Object names");
  get_cmd->add_option("-o,--output", get.output, "Output format: wide|json|yaml|name");
  get_cmd->add_flag("-A,--all-namespaces", get.all_namespaces, "List across namespaces");

  // describe
  describe_options describe;
  describe.node.data_dir = default_dir;
  auto* describe_cmd = app.add_subcommand("describe", "Show a pod in detail, with its events");
  add_data_dir(describe_cmd, describe.node.data_dir);
  add_namespace(describe_cmd, describe.node);
  describe_cmd->add_option("resource", describe.resource, "pods|po|pod[/NAME]")->required();
  describe_cmd->add_option("names", describe.names, "Pod names");

  // delete
  delete_options del;
  del.node.data_dir = default_dir;
  auto* del_cmd = app.add_subcommand("delete", "Delete pods, services or endpoints");
  add_data_dir(del_cmd, del.node.data_dir);
  add_namespace(del_cmd, del.node);
  del_cmd->add_option("resource", del.resource, "pod|service|svc|endpoints|ep[/NAME]")->required();
  del_cmd->add_option("names", del.names, "Object names");
  del_cmd
      ->add_option("--grace-period", del.grace_period,
                   "Seconds given to the pod to stop (-1: its own)")
      ->capture_default_str();
  del_cmd->add_flag("--force", del.force, "Delete immediately");
  del_cmd->add_flag("--now", del.now, "Delete with a one-second grace period");
  del_cmd->add_flag("--wait", del.wait, "Wait until the object is gone (--wait=false: don't)");

  // logs
  logs_options logs;
  logs.node.data_dir = default_dir;
  std::string logs_container_arg;
  auto* logs_cmd = app.add_subcommand("logs", "Print a container's log");
  add_data_dir(logs_cmd, logs.node.data_dir);
  add_namespace(logs_cmd, logs.node);
  logs_cmd->add_option("pod", logs.pod, "Pod name")->required();
  logs_cmd->add_option("container_name", logs_container_arg, "Container name");
  logs_cmd->add_option("-c,--container", logs.container, "Container name");
  logs_cmd->add_flag("-f,--follow", logs.follow, "Keep printing new output");
  logs_cmd->add_flag("-p,--previous", logs.previous, "The previous instance's log");
  logs_cmd->add_option("--tail", logs.tail, "Lines from the end (-1: all)");

  // exec
  exec_options exec;
  exec.node.data_dir = default_dir;
  int64_t exec_timeout_ms = 0;
  auto* exec_cmd = app.add_subcommand("exec", "Run a command in a container");
  add_data_dir(exec_cmd, exec.node.data_dir);
  add_namespace(exec_cmd, exec.node);
  exec_cmd->add_option("pod", exec.pod, "Pod name")->required();
  exec_cmd->add_option("command", exec.command, "Command and arguments (after --)");
  exec_cmd->add_option("-c,--container", exec.container, "Container name (default: the first)");
  exec_cmd->add_flag("-i,--stdin", exec.pass_stdin, "Pass stdin to the command");
  exec_cmd->add_option("--timeout-ms", exec_timeout_ms, "Kill the command after this long");

  // status
  node_options status_node{default_dir};
  auto* status_cmd = app.add_subcommand("status", "Show the node's processes and health");
  add_data_dir(status_cmd, status_node.data_dir);

  // image
  node_options image_node{default_dir};
  auto* image_cmd = app.add_subcommand("image", "Manage the node's images");
  image_cmd->require_subcommand(1);
  std::string import_path, import_name;
  auto* import_cmd = image_cmd->add_subcommand("import", "Import an OCI layout or archive");
  add_data_dir(import_cmd, image_node.data_dir);
  import_cmd->add_option("path", import_path, "OCI layout directory or archive")->required();
  import_cmd->add_option("--name", import_name, "Name to give the image");
  auto* ls_cmd = image_cmd->add_subcommand("ls", "List images");
  ls_cmd->alias("list");
  add_data_dir(ls_cmd, image_node.data_dir);
  image_pull_options pull;
  auto* pull_cmd = image_cmd->add_subcommand("pull", "Pull an image from a registry");
  add_data_dir(pull_cmd, image_node.data_dir);
  pull_cmd->add_option("ref", pull.ref, "Image reference (e.g. busybox:1.36)")->required();
  pull_cmd
      ->add_option("--secret", pull.secrets,
                   "Credentials to use, by name (imagePullSecrets; repeatable)")
      ->allow_extra_args(false);
  std::vector<std::string> rm_refs;
  auto* rm_cmd = image_cmd->add_subcommand("rm", "Remove images");
  rm_cmd->alias("remove");
  add_data_dir(rm_cmd, image_node.data_dir);
  rm_cmd->add_option("refs", rm_refs, "Image names or ids")->required();

  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(std::move(reversed));
  } catch (const CLI::ParseError& e) {
    return app.exit(e, io.out, io.err);
  }

  if (*up_cmd) {
    auto finished = finish_up_options(up, up_args, self_bin_dir());
    if (!finished) {
      io.err << "error: " << finished.err().message << "\n";
      return 1;
    }
    // The launcher lives as long as the node: it hands over to the lean
    // deckhand-launcher executable (same flags), which does not map the
    // CLI's libraries (HTTP, TLS, archives, YAML printers: ~2 MB of memory).
    // Without it next to deckhand, the launcher runs in this process.
    auto lean = self_bin_dir() / "deckhand-launcher";
    if (::access(lean.c_str(), X_OK) == 0) {
      std::vector<std::string> argv = {lean.string()};
      argv.insert(argv.end(), args.begin() + 1, args.end());
      std::vector<char*> cargv;
      for (auto& a : argv)
        cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(cargv[0], cargv.data());
      io.err << "warning: cannot run " << lean.string() << ": " << std::strerror(errno)
             << "; running the launcher in this process\n";
    }
    up = std::move(*finished);
    up.run_demo = run_demo;
    log::init("up");
    return run_up(up);
  }
  if (*demo_cmd) {
    log::init("demo");
    std::atomic<bool> never{false};
    return run_demo(std::filesystem::absolute(demo_dir), never) ? 0 : 1;
  }
  if (*apply_cmd) {
    apply_node.ns_given = apply_ns->count() > 0;
    return apply_command(apply_node, apply_files, io);
  }
  if (*get_cmd)
    return get_command(get, io);
  if (*describe_cmd)
    return describe_command(describe, io);
  if (*del_cmd)
    return delete_command(del, io);
  if (*logs_cmd) {
    if (!logs_container_arg.empty()) {
      if (!logs.container.empty() && logs.container != logs_container_arg) {
        io.err << "error: only one of -c or an inline [CONTAINER] arg is allowed\n";
        return 1;
      }
      logs.container = logs_container_arg;
    }
    return logs_command(logs, io);
  }
  if (*exec_cmd) {
    exec.timeout = std::chrono::milliseconds(exec_timeout_ms);
    return exec_command(exec, io);
  }
  if (*status_cmd)
    return status_command(status_node, io);
  if (*import_cmd)
    return image_import_command(image_node, import_path, import_name, io);
  if (*pull_cmd) {
    pull.node = image_node;
    pull.tty = ::isatty(STDERR_FILENO) == 1 && &io.err == &std::cerr;
    return image_pull_command(pull, io);
  }
  if (*rm_cmd)
    return image_remove_command(image_node, rm_refs, io);
  if (*ls_cmd)
    return image_list_command(image_node, io);
  return 1;
}

int run_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return run(args, {std::cout, std::cerr, std::cin});
}

}  // namespace deckhand::cli
