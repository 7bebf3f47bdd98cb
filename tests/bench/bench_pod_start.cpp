// bench_pod_start: pod start latency on a real deckhand node (apply through the
// API server to status.phase Running, image already on the node), printed next
// to bare `runc run -d` of the same busybox rootfs and command, measured in the
// same run. A program that prints figures, not a test: see README.md.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>

#include "bench_node.hpp"

using namespace deckhand::bench;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const char* image_ref = "deckhand.local/busybox:bench";

/// The container's command, in the pod and in the bare runc bundle: sleeps,
/// and exits at once on SIGTERM (busybox sh as pid 1 would otherwise ignore
/// it, and every deletion would wait out the grace period).
const std::vector<std::string> container_cmd = {"sh", "-c",
                                                "trap 'exit 0' TERM; sleep 3600 & wait"};

/// What the watch saw of one pod, as steady-clock times.
struct pod_times {
  clock_type::time_point post, acked;
  std::optional<clock_type::time_point> seen, bound, first_status, running, deleted;
  std::string uid;
};

/// The pod records, filled by the watch thread, read by the main thread.
struct tracker {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, pod_times> pods;

  void on_event(const std::string& type, const json& obj, clock_type::time_point at) {
    auto name = obj.value("/metadata/name"_json_pointer, std::string{});
    std::lock_guard lock(mu);
    auto it = pods.find(name);
    if (it == pods.end())
      return;  // a pod from before (a reconnect replays), or not ours
    auto& p = it->second;
    auto uid = obj.value("/metadata/uid"_json_pointer, std::string{});
    if (!p.uid.empty() && uid != p.uid)
      return;
    if (!p.seen)
      p.seen = at;
    if (!p.bound && !obj.value("/spec/nodeName"_json_pointer, std::string{}).empty())
      p.bound = at;
    // The kubelet's first report carries startTime (the API server's own
    // default status does not).
    if (!p.first_status && obj.contains("/status/startTime"_json_pointer))
      p.first_status = at;
    if (!p.running && obj.value("/status/phase"_json_pointer, std::string{}) == "Running")
      p.running = at;
    if (type == "DELETED" && !p.deleted)
      p.deleted = at;
    cv.notify_all();
  }
};

json pod_manifest(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", {{"bench", "pod-start"}}}}},
          {"spec",
           {{"terminationGracePeriodSeconds", 5},
            {"containers",
             {{{"name", "c"},
               {"image", image_ref},
               {"imagePullPolicy", "IfNotPresent"},
               {"command", container_cmd}}}}}}};
}

/// `runc run -d` of the bundle until runc returns (the container's process
/// is then running), in ms; `runc delete -f` afterwards, not timed.
std::optional<double> time_runc_run(const fs::path& root, const fs::path& bundle,
                                    const std::string& id, std::string* err) {
  auto pid_file = bundle.parent_path() / (id + ".pid");
  std::vector<std::string> argv = {
      "runc",       "--root",          root.string(), "run",           "-d",
      "--pid-file", pid_file.string(), "--bundle",    bundle.string(), id};
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  auto t0 = clock_type::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    // The container inherits runc's stdio: /dev/null, as the supervisor
    // hands it a log file.
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto t1 = clock_type::now();
  std::error_code ec;
  fs::remove(pid_file, ec);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *err = "runc run -d exited with status " + std::to_string(status);
    run_program({"runc", "--root", root.string(), "delete", "-f", id}, 30s);
    return std::nullopt;
  }
  auto d = run_program({"runc", "--root", root.string(), "delete", "-f", id}, 30s);
  if (d.exit_code != 0) {
    *err = "runc delete -f: " + d.err;
    return std::nullopt;
  }
  return ms_between(t0, t1);
}

void print_row(const char* metric, double deckhand, double baseline, const std::string& target,
               const std::string& verdict) {
  char ratio[32] = "-";
  if (baseline > 0)
    std::snprintf(ratio, sizeof ratio, "%.2f", deckhand / baseline);
  std::printf("%-34s %10.1f %12.1f %7s   %-18s %s\n", metric, deckhand, baseline, ratio,
              target.c_str(), verdict.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_pod_start: pod start latency (apply to Running) vs bare runc run -d"};
  std::string bin_dir = self_dir().string();
  int pods = 100, warmup = 5, batch = 1, runc_runs = -1;
  bool keep_data = false, quick = false, print_samples = false;
  std::string trace_dir;
  std::vector<std::string> kubelet_args;
  app.add_option("--bin-dir", bin_dir, "Directory of deckhand's executables")
      ->capture_default_str();
  app.add_option("--pods", pods, "Measured pods")->capture_default_str();
  app.add_option("--warmup", warmup, "Pods started (and runc runs) before measuring")
      ->capture_default_str();
  app.add_option("--batch", batch,
                 "Pods created together (1: one at a time, each deleted before the next)")
      ->capture_default_str();
  app.add_option("--runc-runs", runc_runs, "Bare runc runs (default: as many as --pods)");
  app.add_option("--kubelet-arg", kubelet_args, "Extra kubelet flag (repeatable)");
  app.add_flag("--keep-data", keep_data, "Keep the node's data dir and logs");
  app.add_flag("--quick", quick, "Smoke run: 5 pods, 1 warm-up");
  app.add_flag("--samples", print_samples, "Print every sample");
  app.add_option("--trace-dir", trace_dir,
                 "Write timeline.csv (wall-clock ms of each pod's stages), each pod's "
                 "supervisor.log and the node's up.log there, for profiling");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    pods = 5;
    warmup = 1;
  }
  if (runc_runs < 0)
    runc_runs = pods;
  batch = std::max(1, batch);
  if (!trace_dir.empty()) {
    std::error_code ec;
    fs::create_directories(trace_dir, ec);
  }
  install_signal_handlers();

  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench_pod_start: needs root (runc, namespaces, mounts)\n");
    return 2;
  }
  for (const char* exe : {"deckhand", "deckhand-apiserver", "deckhand-kubelet", "deckhand-runtime",
                          "deckhand-proxy", "deckhand-pod-supervisor"}) {
    if (!fs::exists(fs::path(bin_dir) / exe)) {
      std::fprintf(stderr, "bench_pod_start: %s not found in %s (use --bin-dir)\n", exe,
                   bin_dir.c_str());
      return 2;
    }
  }

  char tmpl[] = "/tmp/dh-bench-ps-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 2;
  }
  fs::path work = tmpl;
  fs::path runc_root = work / "runc-root";
  int rc = 0;
  std::string failure;
  std::vector<double> runc_ms, pod_ms, ack_ms, bind_ms, kubelet_ms, report_ms, delete_ms;
  std::string header = host_line();
  {
    node_options nopt;
    nopt.bin_dir = bin_dir;
    nopt.keep_data = keep_data;
    nopt.kubelet_args = kubelet_args;
    node n(nopt);
    std::unique_ptr<pod_watch> watch;
    tracker tr;
    try {
      std::fprintf(stderr, "building the busybox image in %s\n", work.c_str());
      if (auto e = make_busybox_image(work / "image", image_ref); !e.empty())
        throw std::runtime_error(e);
      if (auto e = make_runc_bundle(work / "bundle", work / "image" / "rootfs", container_cmd);
          !e.empty())
        throw std::runtime_error(e);
      std::fprintf(stderr, "starting deckhand up on %s\n", n.data().c_str());
      if (auto e = n.start(); !e.empty())
        throw std::runtime_error(e);
      if (auto e = n.import_image(work / "image" / "layout", image_ref); !e.empty())
        throw std::runtime_error(e);

      // Baseline: bare runc, with the node up and idle, as the pods will see it.
      std::fprintf(stderr, "bare runc run -d: %d runs (+%d warm-up)\n", runc_runs, warmup);
      for (int i = 0; i < warmup + runc_runs; ++i) {
        if (interrupted())
          throw std::runtime_error("interrupted");
        std::string err;
        auto ms = time_runc_run(runc_root, work / "bundle", "bench-" + std::to_string(i), &err);
        if (!ms)
          throw std::runtime_error(err);
        if (i >= warmup)
          runc_ms.push_back(*ms);
      }

      watch = std::make_unique<pod_watch>(
          n.api_url(), "/api/v1/namespaces/default/pods?labelSelector=bench%3Dpod-start",
          [&](const std::string& type, const json& obj, clock_type::time_point at) {
            tr.on_event(type, obj, at);
          });
      if (!watch->wait_open(10s))
        throw std::runtime_error("the pod watch did not open");

      api_client api(n.api_url());
      const std::string pods_path = "/api/v1/namespaces/default/pods";
      std::fprintf(stderr, "pods: %d (+%d warm-up), batch %d\n", pods, warmup, batch);
      int total = warmup + pods;
      for (int first = 0; first < total; first += batch) {
        int last = std::min(total, first + batch);
        std::vector<std::string> names;
        for (int i = first; i < last; ++i) {
          if (interrupted())
            throw std::runtime_error("interrupted");
          char name[32];
          std::snprintf(name, sizeof name, "ps-%05d", i);
          names.push_back(name);
          {
            std::lock_guard lock(tr.mu);
            tr.pods[name].post = clock_type::now();
          }
          auto r = api.post(pods_path, pod_manifest(name));
          auto acked = clock_type::now();
          if (r.status != 201)
            throw std::runtime_error("create pod " + std::string(name) + ": HTTP " +
                                     std::to_string(r.status) + " " + r.error + r.body);
          std::lock_guard lock(tr.mu);
          auto& p = tr.pods[name];
          p.acked = acked;
          try {
            p.uid = json::parse(r.body).value("/metadata/uid"_json_pointer, std::string{});
          } catch (...) {
          }
        }
        auto wait_all = [&](auto done, const char* what) {
          std::unique_lock lock(tr.mu);
          auto end = clock_type::now() + 120s;
          for (const auto& name : names) {
            while (!done(tr.pods[name])) {
              if (interrupted())
                throw std::runtime_error("interrupted");
              if (tr.cv.wait_until(lock, std::min(end, clock_type::now() + 200ms)) ==
                      std::cv_status::timeout &&
                  clock_type::now() >= end)
                throw std::runtime_error("pod " + name + " did not become " + what +
                                         " within 120 s");
            }
          }
        };
        wait_all([](const pod_times& p) { return p.running.has_value(); }, "Running");
        if (!trace_dir.empty()) {
          std::lock_guard lock(tr.mu);
          for (const auto& name : names) {
            auto log = n.data() / "runtime" / "pods" / tr.pods[name].uid / "supervisor.log";
            std::error_code ec;
            fs::copy_file(log, fs::path(trace_dir) / (name + ".supervisor.log"),
                          fs::copy_options::overwrite_existing, ec);
          }
        }
        std::map<std::string, clock_type::time_point> del_at;
        for (const auto& name : names) {
          del_at[name] = clock_type::now();
          auto r = api.del(pods_path + "/" + name);
          if (r.status != 200 && r.status != 202)
            throw std::runtime_error("delete pod " + name + ": HTTP " + std::to_string(r.status) +
                                     " " + r.error + r.body);
        }
        wait_all([](const pod_times& p) { return p.deleted.has_value(); }, "deleted");
        std::lock_guard lock(tr.mu);
        for (int i = first; i < last; ++i) {
          if (i < warmup)
            continue;
          const auto& name = names[static_cast<std::size_t>(i - first)];
          const auto& p = tr.pods[name];
          pod_ms.push_back(ms_between(p.post, *p.running));
          ack_ms.push_back(ms_between(p.post, p.acked));
          auto bound = p.bound.value_or(p.acked);
          bind_ms.push_back(ms_between(p.acked, bound));
          auto first_status = p.first_status.value_or(*p.running);
          kubelet_ms.push_back(ms_between(bound, first_status));
          report_ms.push_back(ms_between(first_status, *p.running));
          delete_ms.push_back(ms_between(del_at[name], *p.deleted));
        }
        if ((last % 20) == 0 || last == total)
          std::fprintf(stderr, "  %d/%d\n", last, total);
      }
    } catch (const std::exception& e) {
      failure = e.what();
      rc = 1;
    }
    if (watch)
      watch->stop();
    if (!trace_dir.empty()) {
      // Wall-clock times, to line up with the components' log timestamps.
      auto sys_now = std::chrono::system_clock::now();
      auto steady_now = clock_type::now();
      auto wall_ms = [&](std::optional<clock_type::time_point> t) -> std::string {
        if (!t)
          return "";
        auto w = sys_now +
                 std::chrono::duration_cast<std::chrono::system_clock::duration>(*t - steady_now);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f",
                      std::chrono::duration<double, std::milli>(w.time_since_epoch()).count());
        return buf;
      };
      std::ofstream csv(fs::path(trace_dir) / "timeline.csv");
      csv << "name,uid,post,acked,seen,bound,first_status,running,deleted\n";
      std::lock_guard lock(tr.mu);
      for (const auto& [name, p] : tr.pods)
        csv << name << ',' << p.uid << ',' << wall_ms(p.post) << ',' << wall_ms(p.acked) << ','
            << wall_ms(p.seen) << ',' << wall_ms(p.bound) << ',' << wall_ms(p.first_status) << ','
            << wall_ms(p.running) << ',' << wall_ms(p.deleted) << '\n';
      std::error_code ec;
      fs::copy_file(n.up_log(), fs::path(trace_dir) / "up.log",
                    fs::copy_options::overwrite_existing, ec);
    }
    std::fprintf(stderr, "stopping the node\n");
    auto left = n.shutdown();
    for (const auto& l : left)
      std::fprintf(stderr, "LEFT BEHIND: %s\n", l.c_str());
    if (!left.empty()) {
      rc = 1;
      std::fprintf(stderr, "node data kept at %s\n", n.data().c_str());
    } else if (keep_data) {
      std::fprintf(stderr, "node data kept at %s (log %s)\n", n.data().c_str(), n.up_log().c_str());
    }
  }
  {
    // Baseline containers left by an interrupted run.
    auto l = run_program({"runc", "--root", runc_root.string(), "list", "-q"}, 10s);
    std::istringstream ids(l.out);
    for (std::string id; std::getline(ids, id);)
      if (!id.empty())
        run_program({"runc", "--root", runc_root.string(), "delete", "-f", id}, 30s);
  }
  {
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  if (rc != 0) {
    std::fprintf(stderr, "bench_pod_start: FAILED: %s\n", failure.c_str());
    return rc;
  }

  auto d = summarize(pod_ms);
  auto b = summarize(runc_ms);
  std::printf("bench_pod_start %s\n", header.c_str());
  std::printf("bin dir %s\n", fs::absolute(bin_dir).c_str());
  std::printf("pods %d (+%d warm-up), %s; image present on the node; times from the\n"
              "create POST to the watch event with status.phase=Running (a watch, no polling)\n",
              pods, warmup,
              batch == 1 ? "one at a time, each deleted and gone before the next"
                         : ("in batches of " + std::to_string(batch) +
                            ", each batch deleted and gone before the next")
                               .c_str());
  std::printf("baseline: bare `runc run -d` of the same busybox rootfs and command, %d runs\n"
              "(+%d warm-up), fork to runc's exit (the container's process is running), node "
              "up and idle\n\n",
              runc_runs, warmup);
  std::printf("%-34s %10s %12s %7s   %-18s %s\n", "metric", "deckhand", "runc run -d", "ratio",
              "target", "verdict");
  std::printf("%s\n", std::string(100, '-').c_str());
  print_row("start latency min (ms)", d.min, b.min, "", "");
  print_row("start latency p50 (ms)", d.p50, b.p50, "<= 2x runc p50",
            d.p50 <= 2 * b.p50 ? "MET" : "MISSED");
  print_row("start latency p90 (ms)", d.p90, b.p90, "", "");
  print_row("start latency p99 (ms)", d.p99, b.p99, "< 100 ms", d.p99 < 100 ? "MET" : "MISSED");
  print_row("start latency max (ms)", d.max, b.max, "", "");
  print_row("start latency mean (ms)", d.mean, b.mean, "", "");
  std::printf("%s\n", std::string(100, '-').c_str());
  std::printf("where a pod's time goes (p50 / p99 / mean ms of each stage, from the watch):\n");
  auto stage = [](const char* what, const std::vector<double>& v) {
    auto s = summarize(v);
    std::printf("  %-52s %8.1f %8.1f %8.1f\n", what, s.p50, s.p99, s.mean);
  };
  stage("POST /pods until its 201 (API server write + fsync)", ack_ms);
  stage("201 until bound (spec.nodeName in the watch)", bind_ms);
  stage("bound until the kubelet's first status (startTime)", kubelet_ms);
  stage("first status until phase Running", report_ms);
  stage("DELETE until the object is gone (not in the figure)", delete_ms);
  if (print_samples) {
    std::printf("samples (ms), deckhand:");
    for (double v : pod_ms)
      std::printf(" %.1f", v);
    std::printf("\nsamples (ms), runc:");
    for (double v : runc_ms)
      std::printf(" %.1f", v);
    std::printf("\n");
  }
  return 0;
}
