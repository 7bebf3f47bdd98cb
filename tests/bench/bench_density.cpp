// bench_density: N pods (default 300, busybox sleep) on one deckhand node, the
// time until all are Running, and the memory (PSS) of the node's own
// processes per component, everything but the containers. A program that
// prints figures, not a test: see README.md.

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <set>

#include <CLI/CLI.hpp>

#include "bench_node.hpp"

using namespace deckhand::bench;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const char* image_ref = "deckhand.local/busybox:bench";

json pod_manifest(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", {{"bench", "density"}}}}},
          {"spec",
           {{"terminationGracePeriodSeconds", 5},
            {"containers",
             {{{"name", "c"},
               {"image", image_ref},
               {"imagePullPolicy", "IfNotPresent"},
               {"command", {"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}}}}}}}};
}

struct component_mem {
  int count = 0;
  long pss = 0, rss = 0;  // KiB
  double cpu_s = 0;       // CPU seconds used during the measurement window
};

/// PSS/RSS of the node's processes by component, after a window of
/// `window_ms` over which their CPU time is measured.
std::map<std::string, component_mem> measure(const node& n, int window_ms) {
  std::map<pid_t, double> cpu_before;
  for (const auto& [pid, argv0] : n.processes())
    cpu_before[pid] = cpu_seconds(pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(window_ms));
  std::map<std::string, component_mem> out;
  for (const auto& [pid, argv0] : n.processes()) {
    std::string comp;
    if (pid == n.up_pid())
      comp = "deckhand up (launcher)";
    else if (argv0 == "deckhand-apiserver")
      comp = "apiserver";
    else if (argv0 == "deckhand-kubelet")
      comp = "kubelet";
    else if (argv0 == "deckhand-runtime")
      comp = "runtime";
    else if (argv0 == "deckhand-proxy")
      comp = "proxy";
    else if (argv0 == "deckhand-pod-supervisor")
      comp = "pod supervisors (all)";
    else if (argv0 == "supervisor zygote")
      comp = "supervisor zygote";
    else
      comp = "other: " + argv0;  // e.g. a CLI call in flight
    long pss = pss_kib(pid);
    long rss = rss_kib(pid);
    if (pss < 0)
      continue;  // gone meanwhile
    auto& c = out[comp];
    c.count++;
    c.pss += pss;
    c.rss += std::max(0L, rss);
    auto before = cpu_before.find(pid);
    double now = cpu_seconds(pid);
    if (before != cpu_before.end() && before->second >= 0 && now >= before->second)
      c.cpu_s += now - before->second;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_density: N pods on one node; per-component memory (PSS) of the node"};
  std::string bin_dir = self_dir().string();
  int pods = 300, settle_ms = 5000, timeout_s = 900, rest_s = 30;
  double target_mib = 150;
  bool keep_data = false, quick = false;
  std::vector<std::string> kubelet_args, runtime_args;
  app.add_option("--bin-dir", bin_dir, "Directory of deckhand's executables")
      ->capture_default_str();
  app.add_option("--pods", pods, "Pods to run")->capture_default_str();
  app.add_option("--settle-ms", settle_ms, "Measurement window (CPU time is taken over it)")
      ->capture_default_str();
  app.add_option("--rest-s", rest_s,
                 "The window starts this long after the last pod is Running: the node at rest, "
                 "its components' periodic heap scavenging (every 10 s) done")
      ->capture_default_str();
  app.add_option("--timeout-s", timeout_s, "Give up if not all pods are Running by then")
      ->capture_default_str();
  app.add_option("--target-mib", target_mib, "Memory target for the node's processes")
      ->capture_default_str();
  app.add_option("--kubelet-arg", kubelet_args, "Extra kubelet flag (repeatable)");
  app.add_option("--runtime-arg", runtime_args,
                 "Extra runtime flag (repeatable), e.g. --supervisor-bin=WRAPPER to profile "
                 "exec'd supervisors");
  app.add_flag("--keep-data", keep_data, "Keep the node's data dir and logs");
  app.add_flag("--quick", quick, "Smoke run: 10 pods, 1 s settle");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    pods = 10;
    settle_ms = 1000;
    rest_s = 2;
  }
  rest_s = std::max(rest_s, 2);
  install_signal_handlers();
  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench_density: needs root (runc, namespaces, mounts)\n");
    return 2;
  }
  for (const char* exe : {"deckhand", "deckhand-apiserver", "deckhand-kubelet", "deckhand-runtime",
                          "deckhand-proxy", "deckhand-pod-supervisor"}) {
    if (!fs::exists(fs::path(bin_dir) / exe)) {
      std::fprintf(stderr, "bench_density: %s not found in %s (use --bin-dir)\n", exe,
                   bin_dir.c_str());
      return 2;
    }
  }
  char tmpl[] = "/tmp/dh-bench-density-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 2;
  }
  fs::path work = tmpl;
  int rc = 0;
  std::string failure;
  std::string header = host_line();
  std::map<std::string, component_mem> idle, loaded, burst;
  double post_all_ms = 0, all_running_ms = 0, half_running_ms = 0;
  std::vector<double> post_ms;
  int running_at_end = 0, containers_running = 0;
  {
    node_options nopt;
    nopt.bin_dir = bin_dir;
    nopt.keep_data = keep_data;
    nopt.kubelet_args = kubelet_args;
    // Kubernetes' maxPods is 110: a node meant for more pods says so.
    bool sets_max_pods = false;
    for (const auto& a : kubelet_args)
      sets_max_pods = sets_max_pods || a.rfind("--max-pods", 0) == 0;
    if (!sets_max_pods && pods > 110)
      nopt.kubelet_args.push_back("--max-pods=" + std::to_string(pods));
    if (!runtime_args.empty()) {
      nopt.extra_config = "  runtime:\n    args: " + json(runtime_args).dump() + "\n";
    }
    node n(nopt);
    std::unique_ptr<pod_watch> watch;
    std::mutex mu;
    std::condition_variable cv;
    std::set<std::string> ours, running;
    std::vector<clock_type::time_point> running_at;
    try {
      std::fprintf(stderr, "building the busybox image in %s\n", work.c_str());
      if (auto e = make_busybox_image(work / "image", image_ref); !e.empty())
        throw std::runtime_error(e);
      std::fprintf(stderr, "starting deckhand up on %s\n", n.data().c_str());
      if (auto e = n.start(); !e.empty())
        throw std::runtime_error(e);
      if (auto e = n.import_image(work / "image" / "layout", image_ref); !e.empty())
        throw std::runtime_error(e);
      std::this_thread::sleep_for(2s);
      idle = measure(n, settle_ms);

      watch = std::make_unique<pod_watch>(
          n.api_url(), "/api/v1/namespaces/default/pods?labelSelector=bench%3Ddensity",
          [&](const std::string&, const json& obj, clock_type::time_point at) {
            auto name = obj.value("/metadata/name"_json_pointer, std::string{});
            if (obj.value("/status/phase"_json_pointer, std::string{}) != "Running")
              return;
            std::lock_guard lock(mu);
            if (running.insert(name).second) {
              running_at.push_back(at);
              cv.notify_all();
            }
          });
      if (!watch->wait_open(10s))
        throw std::runtime_error("the pod watch did not open");

      api_client api(n.api_url());
      std::fprintf(stderr, "creating %d pods\n", pods);
      auto t0 = clock_type::now();
      for (int i = 0; i < pods; ++i) {
        if (interrupted())
          throw std::runtime_error("interrupted");
        char name[32];
        std::snprintf(name, sizeof name, "dn-%05d", i);
        auto p0 = clock_type::now();
        auto r = api.post("/api/v1/namespaces/default/pods", pod_manifest(name));
        post_ms.push_back(ms_between(p0, clock_type::now()));
        if (r.status != 201)
          throw std::runtime_error("create pod " + std::string(name) + ": HTTP " +
                                   std::to_string(r.status) + " " + r.error + r.body);
      }
      post_all_ms = ms_between(t0, clock_type::now());
      std::fprintf(stderr, "all %d created after %.0f ms; waiting for Running\n", pods,
                   post_all_ms);
      {
        std::unique_lock lock(mu);
        auto end = t0 + std::chrono::seconds(timeout_s);
        std::size_t reported = 0;
        while (running.size() < static_cast<std::size_t>(pods)) {
          if (interrupted())
            throw std::runtime_error("interrupted");
          cv.wait_until(lock, std::min(end, clock_type::now() + 1s));
          if (running.size() >= reported + 50) {
            reported = running.size();
            std::fprintf(stderr, "  %zu Running after %.1f s\n", reported,
                         ms_between(t0, clock_type::now()) / 1000);
          }
          if (clock_type::now() >= end)
            throw std::runtime_error(std::to_string(running.size()) + " of " +
                                     std::to_string(pods) + " pods Running after " +
                                     std::to_string(timeout_s) + " s");
        }
        std::sort(running_at.begin(), running_at.end());
        all_running_ms = ms_between(t0, running_at.back());
        half_running_ms = ms_between(t0, running_at[running_at.size() / 2]);
      }
      std::fprintf(stderr, "all Running after %.1f s; settling %d ms\n", all_running_ms / 1000,
                   settle_ms);
      std::this_thread::sleep_for(2s);
      // Also right after the burst of starts, for comparison; the target is
      // about the node at rest.
      burst = measure(n, 1000);
      auto rest_left = std::chrono::seconds(rest_s) - 3s;
      if (rest_left > 0s)
        std::this_thread::sleep_for(rest_left);
      loaded = measure(n, settle_ms);
      {
        std::lock_guard lock(mu);
        running_at_end = static_cast<int>(running.size());
      }
      auto l = run_program(
          {"runc", "--root", (n.data() / "runtime" / "runc").string(), "list", "--format", "json"},
          60s);
      try {
        for (const auto& c : json::parse(l.out))
          if (c.value("status", "") == "running")
            containers_running++;
      } catch (...) {
      }
    } catch (const std::exception& e) {
      failure = e.what();
      rc = 1;
    }
    if (watch)
      watch->stop();
    std::fprintf(stderr, "stopping the node and removing %d pods\n", pods);
    auto t_stop = clock_type::now();
    auto left = n.shutdown();
    std::fprintf(stderr, "node stopped and cleaned in %.1f s\n",
                 ms_between(t_stop, clock_type::now()) / 1000);
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
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  if (rc != 0) {
    std::fprintf(stderr, "bench_density: FAILED: %s\n", failure.c_str());
    return rc;
  }

  std::printf("bench_density %s\n", header.c_str());
  std::printf("bin dir %s\n", fs::absolute(bin_dir).c_str());
  std::printf("%d pods (busybox sh + sleep), created one POST after another; %d Running in "
              "the API, %d runc containers running\n",
              pods, running_at_end, containers_running);
  std::printf("memory: PSS from /proc/PID/smaps_rollup at the end of a %d ms window starting %d s "
              "after the last pod was Running;\nCPU %%: user+system time over that window (100 = "
              "one core); "
              "containers not counted.\n'idle' columns: the same node before any pod\n\n",
              settle_ms, rest_s);
  std::printf("%-26s %6s %10s %10s %7s   %10s %7s\n", "component", "procs", "PSS MiB", "RSS MiB",
              "CPU %", "idle PSS", "idle CPU");
  std::printf("%s\n", std::string(86, '-').c_str());
  // The API server is the cluster's, not the node's (on Kubernetes it runs on
  // the control plane): shown, but not part of the node's total.
  const char* order[] = {"kubelet",
                         "runtime",
                         "proxy",
                         "deckhand up (launcher)",
                         "supervisor zygote",
                         "pod supervisors (all)"};
  double total = 0, total_idle = 0, total_cpu = 0, total_idle_cpu = 0;
  std::set<std::string> done;
  auto row = [&](const std::string& name) {
    auto c = loaded.count(name) ? loaded[name] : component_mem{};
    auto i = idle.count(name) ? idle[name] : component_mem{};
    const double window_s = settle_ms / 1000.0;
    std::printf("%-26s %6d %10.1f %10.1f %7.1f   %10.1f %7.1f\n", name.c_str(), c.count,
                c.pss / 1024.0, c.rss / 1024.0, 100 * c.cpu_s / window_s, i.pss / 1024.0,
                100 * i.cpu_s / window_s);
    total_cpu += 100 * c.cpu_s / window_s;
    total_idle_cpu += 100 * i.cpu_s / window_s;
    total += c.pss / 1024.0;
    total_idle += i.pss / 1024.0;
    done.insert(name);
  };
  for (const char* name : order)
    row(name);
  done.insert("apiserver");
  for (const auto& [name, c] : loaded)
    if (!done.count(name))
      row(name);
  double node_total = total, node_total_cpu = total_cpu;
  auto api = loaded.count("apiserver") ? loaded["apiserver"] : component_mem{};
  std::printf("%-26s %6d %10.1f %10.1f   (control plane: not in the node's total)\n", "apiserver",
              api.count, api.pss / 1024.0, api.rss / 1024.0);
  total = node_total;
  total_cpu = node_total_cpu;
  std::printf("%s\n", std::string(86, '-').c_str());
  auto sup = loaded["pod supervisors (all)"];
  if (sup.count > 0)
    std::printf("%-26s %6s %10.2f %10.2f %7.2f\n", "  per pod supervisor (avg)", "",
                sup.pss / 1024.0 / sup.count, sup.rss / 1024.0 / sup.count,
                100 * sup.cpu_s / (settle_ms / 1000.0) / sup.count);
  std::printf("%-26s %6s %10.1f %10s %7.1f   %10.1f %7.1f\n", "total (node's processes)", "", total,
              "", total_cpu, total_idle, total_idle_cpu);
  std::printf("%-26s %6s %10.1f   %s (total PSS <= target)\n", "target (MiB)", "", target_mib,
              total <= target_mib ? "MET" : "MISSED");
  {
    double b = 0;
    for (const auto& [name, c] : burst)
      if (name != "apiserver")
        b += c.pss / 1024.0;
    std::printf("%-26s %6s %10.1f   (2 s after the last pod was Running, before the node is at "
                "rest)\n",
                "total right after starts", "", b);
  }
  std::printf("\ntime to %d Running (from the first create POST): %.1f s (half of them: %.1f "
              "s); all %d POSTs answered after %.1f s; %.1f pods/s\n",
              pods, all_running_ms / 1000, half_running_ms / 1000, pods, post_all_ms / 1000,
              pods / (all_running_ms / 1000));
  if (post_ms.size() >= 20) {
    std::size_t k = std::min<std::size_t>(50, post_ms.size() / 2);
    auto first = summarize({post_ms.begin(), post_ms.begin() + static_cast<long>(k)});
    auto last = summarize({post_ms.end() - static_cast<long>(k), post_ms.end()});
    std::printf("create POST latency (ms): first %zu pods p50 %.1f p99 %.1f; last %zu pods p50 "
                "%.1f p99 %.1f\n",
                k, first.p50, first.p99, k, last.p50, last.p99);
  }
  return 0;
}
