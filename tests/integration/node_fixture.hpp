#pragma once

/// A real deckhand node for integration tests: `deckhand up` on a temporary
/// data directory, the real component processes, real runc containers.
/// Everything it starts is stopped and everything it creates is removed in the
/// destructor, also when a test fails.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/testing/run_program.hpp"

namespace deckhand::testing {

namespace fs = std::filesystem;

/// Polls `pred` every 50 ms until it holds or `deadline` passes.
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds deadline = std::chrono::seconds(30));

/// The directory holding deckhand's executables (env DECKHAND_BIN_DIR).
fs::path bin_dir();

class node {
 public:
  /// Starts `deckhand up` with a launcher config that makes timings fast.
  explicit node(const std::string& extra_config = {});
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  const fs::path& data() const { return data_; }
  pid_t up_pid() const { return up_pid_; }

  /// Runs `deckhand ARGS... --data-dir DATA`.
  command_result cli(std::vector<std::string> args, const std::string& input = {},
                     std::chrono::milliseconds deadline = std::chrono::seconds(60));

  /// Imports the test busybox image (built once per process) as NAME.
  void import_busybox(const std::string& name = "deckhand.local/busybox:test");

  /// `deckhand apply -f -` with `manifest`; requires success.
  void apply(const std::string& manifest);

  /// The pod as the API server has it (null if absent).
  nlohmann::json pod(const std::string& name, const std::string& ns = "default");

  /// Waits for the pod to reach `phase` and returns it.
  nlohmann::json wait_phase(const std::string& name, const std::string& phase,
                            std::chrono::milliseconds deadline = std::chrono::seconds(60));

  /// PID of a component process according to up.json (0 if unknown).
  pid_t component_pid(const std::string& name);

  /// The runc state of a container of a pod: {"status":..., "pid":...}, or null.
  nlohmann::json container_state(const std::string& pod_uid, const std::string& container);

  /// Stops `deckhand up` with `sig` and waits for it (returns its exit code).
  int stop(int sig = 15, std::chrono::milliseconds deadline = std::chrono::seconds(60));

  /// Rewrites the launcher config as the constructor writes it, with
  /// `extra_config` instead; `deckhand up` reads it at the next restart_up.
  void reconfigure(const std::string& extra_config);

  /// Starts `deckhand up` again on the same data directory.
  void restart_up(const std::vector<std::string>& extra_args = {});

  /// Leftovers of this node on the host: runc containers, mounts under the
  /// data dir, pod supervisors. Empty when clean.
  std::vector<std::string> leftovers();

 private:
  void start_up(const std::vector<std::string>& extra_args);
  fs::path data_;
  fs::path config_;
  pid_t up_pid_ = -1;
};

}  // namespace deckhand::testing
