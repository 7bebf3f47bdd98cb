/// The commands of runc's syntax: create, run, start, state, kill, delete,
/// list, exec.

#include "process_runtime_internal.hpp"

namespace deckhand::process_oci {

namespace {

const std::vector<option_def> create_options{
    {"bundle", "b", true},      {"pid-file", "", true},  {"console-socket", "", true},
    {"preserve-fds", "", true}, {"no-pivot", "", false}, {"no-new-keyring", "", false},
    {"detach", "d", false},     {"keep", "", false}};

result<int> preserve_fds_of(const parsed_options& o) {
  if (!o.has("preserve-fds"))
    return 0;
  try {
    int n = std::stoi(o.get("preserve-fds"));
    if (n >= 0 && n < 1024)
      return n;
  } catch (const std::exception&) {
  }
  return error{errc::invalid, "--preserve-fds: not a count of descriptors"};
}

}  // namespace

result<int> cmd_create(const context& ctx, const std::vector<std::string>& args, bool run) {
  auto o = parse_options(args, create_options);
  if (!o)
    return o.err();
  auto id = require_id(*o, run ? "run" : "create");
  if (!id)
    return id.err();
  if (!run && o->has("detach"))
    return error{errc::invalid, "flag provided but not defined: -detach"};
  auto preserve = preserve_fds_of(*o);
  if (!preserve)
    return preserve.err();
  auto c = create_container(ctx, *id, o->get("bundle"), o->get("pid-file"), *preserve);
  if (!c)
    return c.err();
  if (!run)
    return 0;
  if (auto r = start_container(c->rec); !r) {
    (void)destroy(c->rec);
    reap(c->pid);
    return r.err();
  }
  if (o->has("detach"))
    return 0;
  // Foreground: runc waits, passes signals on, and deletes the container.
  sigset_t set = forwarded_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  int code = wait_forwarding(c->pid);
  (void)destroy(c->rec);
  return code;
}

result<int> cmd_start(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {});
  if (!o)
    return o.err();
  auto id = require_id(*o, "start");
  if (!id)
    return id.err();
  auto rec = load_record(ctx.root, *id);
  if (!rec)
    return rec.err();
  if (auto r = start_container(*rec); !r)
    return r.err();
  return 0;
}

result<int> cmd_state(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {});
  if (!o)
    return o.err();
  auto id = require_id(*o, "state");
  if (!id)
    return id.err();
  auto rec = load_record(ctx.root, *id);
  if (!rec)
    return rec.err();
  std::cout << state_json(*rec, status_of(*rec))
                   .dump(2, ' ', false, ordered_json::error_handler_t::replace)
            << "\n";
  return 0;
}

result<int> cmd_kill(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {{"all", "a", false}});
  if (!o)
    return o.err();
  auto id = require_id(*o, "kill", 2);
  if (!id)
    return id.err();
  auto sig = parse_signal(o->positional.size() > 1 ? o->positional[1] : "SIGTERM");
  if (!sig)
    return sig.err();
  auto rec = load_record(ctx.root, *id);
  if (!rec)
    return rec.err();
  const status s = status_of(*rec);
  if (o->has("all")) {
    // runc signals whatever is left in the cgroup, even once init is gone;
    // here that is the session, which init leads (it cannot leave it).
    signal_session(*rec, *sig);
    return 0;
  }
  if (s == status::stopped)
    return error{errc::conflict, "container not running"};
  if (::kill(rec->pid, *sig) != 0) {
    if (errno == ESRCH)
      return error{errc::conflict, "container not running"};
    return error::from_errno("kill " + std::to_string(rec->pid));
  }
  return 0;
}

result<int> cmd_delete(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {{"force", "f", false}});
  if (!o)
    return o.err();
  auto id = require_id(*o, "delete");
  if (!id)
    return id.err();
  const bool force = o->has("force");
  auto rec = load_record(ctx.root, *id);
  if (!rec) {
    if (rec.err().code != errc::not_found)
      return rec.err();
    // As runc: a directory without state (an aborted create) is removed;
    // a missing container is an error unless forced.
    std::error_code ec;
    fs::remove_all(ctx.root / *id, ec);
    if (force)
      return 0;
    return rec.err();
  }
  const status s = status_of(*rec);
  if (s == status::running && !force)
    return error{errc::conflict,
                 "cannot delete container " + *id + " that is not stopped: running"};
  if (s != status::stopped) {
    // Created (or creating) containers are killed even without --force, as
    // runc does: they never ran anything.
    ::kill(rec->pid, SIGKILL);
    kill_session(*rec);
    if (!wait_stopped(*rec, kill_wait))
      return error{errc::unavailable, "container " + *id + ": process " + std::to_string(rec->pid) +
                                          " still running after SIGKILL"};
  }
  if (auto r = destroy(*rec); !r)
    return r.err();
  return 0;
}

result<int> cmd_list(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {{"format", "f", true}, {"quiet", "q", false}});
  if (!o)
    return o.err();
  if (!o->positional.empty())
    return error{errc::invalid, "list: too many arguments"};
  const std::string format = o->get("format", "table");
  if (format != "table" && format != "json")
    return error{errc::invalid, "invalid format option"};
  std::vector<std::pair<container_record, status>> found;
  std::error_code ec;
  std::vector<std::string> ids;
  for (fs::directory_iterator it(ctx.root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code dec;
    if (it->is_directory(dec) && valid_container_id(it->path().filename().string()))
      ids.push_back(it->path().filename().string());
  }
  std::sort(ids.begin(), ids.end());
  for (const auto& id : ids)
    if (auto rec = load_record(ctx.root, id))
      found.emplace_back(std::move(*rec), status::stopped);
  for (auto& [rec, s] : found)
    s = status_of(rec);

  if (o->has("quiet")) {
    for (const auto& [rec, s] : found)
      std::cout << rec.id << "\n";
    return 0;
  }
  if (format == "json") {
    if (found.empty()) {
      std::cout << "null\n";  // runc's output for an empty list
      return 0;
    }
    ordered_json arr = ordered_json::array();
    for (const auto& [rec, s] : found)
      arr.push_back(state_json(rec, s));
    std::cout << arr.dump(-1, ' ', false, ordered_json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("%-24s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
              "OWNER");
  for (const auto& [rec, s] : found)
    std::printf("%-24s %-8d %-10s %-40s %-32s %s\n", rec.id.c_str(),
                s == status::stopped ? 0 : rec.pid, status_name(s), rec.bundle.c_str(),
                rec.created.c_str(), owner_of(rec.dir).c_str());
  return 0;
}

result<int> cmd_exec(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {{"cwd", "", true},
                                {"env", "e", true},
                                {"pid-file", "", true},
                                {"detach", "d", false},
                                {"user", "u", true},
                                {"additional-gids", "g", true},
                                {"no-new-privs", "", false},
                                {"tty", "t", false},
                                {"console-socket", "", true},
                                {"process", "p", true},
                                {"cap", "c", true},
                                {"apparmor", "", true},
                                {"process-label", "", true},
                                {"preserve-fds", "", true},
                                {"ignore-paused", "", false},
                                {"cgroup", "", true}});
  if (!o)
    return o.err();
  if (o->has("tty"))
    return error{errc::unsupported, "exec --tty: the process back-end has no terminals"};
  if (o->has("process"))
    return error{errc::unsupported,
                 "exec --process is not supported by " + std::string(program_name)};
  if (o->positional.empty())
    return error{errc::invalid, "exec: a container id is required"};
  const std::string id = o->positional[0];
  std::vector<std::string> command(o->positional.begin() + 1, o->positional.end());
  if (command.empty() || command[0].empty())
    return error{errc::invalid, "exec: the command must not be empty"};
  auto preserve = preserve_fds_of(*o);
  if (!preserve)
    return preserve.err();
  auto rec = load_record(ctx.root, id);
  if (!rec)
    return rec.err();
  const status s = status_of(*rec);
  if (s == status::stopped)
    return error{errc::conflict, "cannot exec in a stopped container (container not running)"};
  if (s == status::creating)
    return error{errc::conflict, "container " + id + " is still being created"};
  auto spec = spec_from_json(rec->config, rec->bundle);
  if (!spec)
    return error{errc::internal, "container " + id + ": stored " + spec.err().message};

  merge_env(spec->env, o->all("env"));
  if (o->has("no-new-privs"))
    spec->no_new_privileges = true;
  if (o->has("user")) {
    const std::string u = o->get("user");
    try {
      std::size_t used = 0;
      auto colon = u.find(':');
      spec->uid = static_cast<uid_t>(std::stoul(u.substr(0, colon), &used));
      if (used != (colon == std::string::npos ? u.size() : colon))
        throw std::invalid_argument(u);
      if (colon != std::string::npos) {
        spec->gid = static_cast<gid_t>(std::stoul(u.substr(colon + 1), &used));
        if (used != u.size() - colon - 1)
          throw std::invalid_argument(u);
      }
    } catch (const std::exception&) {
      return error{errc::invalid, "exec --user " + u + ": expected UID[:GID] in numbers"};
    }
  }
  for (const auto& g : o->all("additional-gids")) {
    try {
      spec->additional_gids.push_back(static_cast<gid_t>(std::stoul(g)));
    } catch (const std::exception&) {
      return error{errc::invalid, "exec --additional-gids " + g + ": not a number"};
    }
  }
  fs::path cwd = o->has("cwd") ? fs::path(o->get("cwd")) : rec->host_cwd;
  if (cwd.empty())
    cwd = rec->bundle;
  launch_plan plan = make_plan(command, *spec, cwd);
  plan.preserve_fds = *preserve;
  auto argv = plan.argv();
  auto envp = plan.envp();
  auto sync = make_pipe();
  if (!sync)
    return sync.err();

  // Blocked until the child's pid is known to the forwarding handler.
  sigset_t set = forwarded_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  pid_t pid = ::fork();
  if (pid < 0)
    return error::from_errno("fork");
  if (pid == 0) {
    sync->first.reset();
    const int report_fd = sync->second.get();
    std::string warnings, resolved;
    std::string err = setup_child(plan, warnings, resolved);
    if (!err.empty()) {
      report(report_fd, 'E', err);
      ::_exit(exec_failure);
    }
    report(report_fd, 'W', warnings);
    ::execve(resolved.c_str(), argv.data(), envp.data());
    report(report_fd, 'E', "exec " + resolved + ": " + std::strerror(errno));
    ::_exit(exec_failure);
  }
  sync->second.reset();
  // The pipe closes when the command execs (close-on-exec) or the child dies.
  std::string buffer;
  while (auto msg = read_report(sync->first.get(), buffer)) {
    if (msg->empty())
      continue;
    if ((*msg)[0] == 'E') {
      reap(pid);
      return error{errc::internal, msg->substr(1)};
    }
    log_warnings(msg->substr(1));
  }
  if (auto r = write_pid_file(o->get("pid-file"), pid); !r)
    log_warning(r.err().message);
  if (o->has("detach"))
    return 0;
  return wait_forwarding(pid);
}

}  // namespace deckhand::process_oci
