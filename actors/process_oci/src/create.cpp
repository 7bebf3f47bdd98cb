/// Creating a container (its process set up and waiting on the exec fifo)
/// and starting it.

#include "process_runtime_internal.hpp"

#include "deckhand/api/time.hpp"

namespace deckhand::process_oci {

namespace {

result<void> ensure_root(const fs::path& root) {
  std::error_code ec;
  if (fs::is_directory(root, ec))
    return {};
  fs::create_directories(root, ec);
  if (ec)
    return error{errc::io, "create root " + root.string() + ": " + ec.message()};
  ::chmod(root.c_str(), 0700);
  return {};
}

}  // namespace

result<std::string> require_id(const parsed_options& o, const char* command, std::size_t max_args) {
  if (o.positional.empty())
    return error{errc::invalid, std::string(command) + ": a container id is required"};
  if (o.positional.size() > max_args)
    return error{errc::invalid, std::string(command) + ": too many arguments"};
  if (!valid_container_id(o.positional[0]))
    return error{errc::invalid, "invalid container id format: " + o.positional[0]};
  return o.positional[0];
}

result<created_container> create_container(const context& ctx, const std::string& id,
                                           const fs::path& bundle_arg, const std::string& pid_file,
                                           int preserve_fds) {
  std::error_code ec;
  const fs::path bundle =
      fs::absolute(bundle_arg.empty() ? fs::current_path(ec) : bundle_arg, ec).lexically_normal();
  auto text = read_config(bundle);
  if (!text)
    return text.err();
  auto j = parse_json_text(*text);
  if (!j)
    return error{errc::invalid, "bundle " + bundle.string() + ": " + j.err().message};
  auto spec = spec_from_json(*j, bundle);
  if (!spec)
    return error{spec.err().code, "bundle " + bundle.string() + ": " + spec.err().message};
  if (auto r = ensure_root(ctx.root); !r)
    return r.err();

  container_record rec;
  rec.id = id;
  rec.dir = ctx.root / id;
  rec.bundle = bundle;
  rec.rootfs = spec->rootfs;
  rec.host_cwd = host_working_dir(*spec, bundle);
  rec.created = api::format_rfc3339_nano(std::chrono::system_clock::now());
  rec.annotations = json(spec->annotations);
  rec.config = json{{"process", (*j)["process"]}};
  if (j->contains("root"))
    rec.config["root"] = (*j)["root"];

  if (::mkdir(rec.dir.c_str(), 0700) != 0) {
    if (errno == EEXIST)
      return error{errc::already_exists, "container with id " + id + " already exists"};
    return error::from_errno("mkdir " + rec.dir.string());
  }
  auto fail = [&](error e) -> error {
    fs::remove_all(rec.dir, ec);
    return e;
  };
  const fs::path fifo = fifo_path(rec.dir);
  if (::mkfifo(fifo.c_str(), 0600) != 0)
    return fail(error::from_errno("mkfifo " + fifo.string()));

  launch_plan plan = make_plan(spec->args, *spec, rec.host_cwd);
  plan.preserve_fds = preserve_fds;
  auto argv = plan.argv();
  auto envp = plan.envp();
  auto sync = make_pipe();
  if (!sync)
    return fail(sync.err());

  pid_t pid = ::fork();
  if (pid < 0)
    return fail(error::from_errno("fork"));
  if (pid == 0) {
    sync->first.reset();
    const int report_fd = sync->second.get();
    // A session of its own: the container's processes are its members
    // (kill --all, delete), and it leaves the caller's terminal and group.
    ::setsid();
    // O_RDWR never blocks and keeps a writer open, so start's non-blocking
    // open for writing succeeds exactly while this process is alive, and the
    // read below waits for start's byte. Opened before any user switch: the
    // fifo is ours.
    int fifo_fd = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
    if (fifo_fd < 0) {
      report(report_fd, 'E', "open " + fifo.string() + ": " + std::strerror(errno));
      ::_exit(1);
    }
    std::string warnings, resolved;
    std::string err = setup_child(plan, warnings, resolved);
    if (!err.empty()) {
      report(report_fd, 'E', err);
      ::_exit(1);
    }
    report(report_fd, 'W', warnings);
    ::close(report_fd);
    char go = 0;
    for (;;) {
      ssize_t n = ::read(fifo_fd, &go, 1);
      if (n == 1)
        break;
      if (n < 0 && errno == EINTR)
        continue;
      ::_exit(1);
    }
    ::execve(resolved.c_str(), argv.data(), envp.data());
    std::string msg =
        std::string(program_name) + ": exec " + resolved + ": " + std::strerror(errno) + "\n";
    write_all(STDERR_FILENO, msg);
    ::_exit(127);
  }

  sync->second.reset();
  auto kill_child = [&] {
    ::kill(pid, SIGKILL);
    reap(pid);
  };
  // Recorded at once (not ready yet: status "creating"), so that a create
  // killed half-way leaves a process that delete can find.
  rec.pid = pid;
  if (auto st = read_proc_stat(pid))
    rec.start_time = st->start_time;
  if (auto r = save_record(rec); !r) {
    kill_child();
    return fail(r.err());
  }
  std::string buffer;
  auto msg = read_report(sync->first.get(), buffer);
  if (!msg || msg->empty() || (*msg)[0] != 'W') {
    if (msg && !msg->empty() && (*msg)[0] == 'E') {
      reap(pid);
      return fail(error{errc::internal, msg->substr(1)});
    }
    kill_child();
    return fail(error{errc::internal, "container process died while being set up"});
  }
  log_warnings(msg->substr(1));
  rec.ready = true;
  if (auto r = save_record(rec); !r) {
    kill_child();
    return fail(r.err());
  }
  if (auto r = write_pid_file(pid_file, pid); !r) {
    kill_child();
    return fail(r.err());
  }
  return created_container{std::move(rec), pid};
}

result<void> start_container(const container_record& rec) {
  switch (status_of(rec)) {
  case status::created: break;
  case status::creating:
    return error{errc::conflict, "container " + rec.id + " is still being created"};
  case status::running: return error{errc::conflict, "cannot start an already running container"};
  case status::stopped: return error{errc::conflict, "cannot start a container that has stopped"};
  }
  const fs::path fifo = fifo_path(rec.dir);
  unique_fd fd(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENXIO)  // no reader: the process is gone
      return error{errc::conflict, "cannot start a container that has stopped"};
    if (errno == ENOENT)
      return error{errc::conflict, "cannot start an already running container"};
    return error::from_errno("open " + fifo.string());
  }
  const char go = '0';
  ssize_t n;
  do {
    n = ::write(fd.get(), &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1)
    return error::from_errno("write " + fifo.string());
  ::unlink(fifo.c_str());
  return {};
}

}  // namespace deckhand::process_oci
