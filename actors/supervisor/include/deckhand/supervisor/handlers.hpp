#pragma once

/// Runs the actions of probes and lifecycle handlers (exec, httpGet,
/// tcpSocket, sleep) against a container, asynchronously and with a timeout.
///
/// Shared API: the probe workers and the lifecycle hooks (postStart,
/// preStop) of the pod supervisor both go through `handler_executor`. The
/// declarations in this header are stable; extend by adding, never by
/// changing.
///
/// Threading and memory: the executor owns at most one thread, started on
/// the first run() and kept until destruction, that multiplexes every action
/// in flight with poll(): non-blocking sockets for httpGet and tcpSocket, a
/// pidfd and pipes for exec. There is no thread per pod, container or probe;
/// a pod without probes or hooks never starts the thread.
///
/// Exec: `RUNTIME --root ROOT exec ID COMMAND...` (runc, crun and
/// deckhand-process-oci all take it; the command gets the container's own
/// environment and working directory). The runtime runs under a "keeper", a
/// clone child of the executor (it signals no SIGCHLD and never execs) that
/// waits for the runtime and exits with its code: the runner's waitpid(-1)
/// never reaps the keeper, nor the runtime (the keeper's own child), so the
/// status cannot be stolen. (The runtime itself cannot be the clone child:
/// execve() makes any child signal SIGCHLD again.) On timeout the keeper's
/// process group (the runtime and the exec'd command) is SIGKILLed.
///
/// Semantics follow the kubelet's prober:
///   - exec: success when the command exits 0; failure otherwise, with the
///     command's output (stdout then stderr, at most 10 KiB) as message; a
///     timeout is a failure ("command timed out").
///   - httpGet: GET SCHEME://HOST:PORT/PATH with httpHeaders, HOST defaulting
///     to the target's pod IP, PATH to "/", SCHEME to HTTP; HTTPS does not
///     verify the certificate. A status in [200, 400) is success, anything
///     else failure ("HTTP probe failed with statuscode: 500"); a connection
///     error or timeout is a failure worded like Go's net/http
///     (`Get "http://10.88.0.5:8080/": dial tcp 10.88.0.5:8080: connect:
///     connection refused`).
///   - tcpSocket: success once a TCP connection is established; failure
///     otherwise ("dial tcp 10.88.0.5:8080: connect: connection refused").
///   - sleep: success after `seconds` (the timeout does not apply).
///   - a named port is looked up in the target's `ports`; an unknown name is
///     an `unknown` result.
/// `unknown` means the action could not be carried out at all (no action
/// set, the runtime could not be started): the kubelet throws such results
/// away instead of counting them.
///
/// Usage (from the pod actor, which forwards the completion to itself):
///
///   auto id = exec.run(handler_action::of(*spec.liveness_probe), target,
///                      std::chrono::seconds(1), [actor](handler_result r) {
///                        caf::anon_send(actor, my_atom::value, ...r...);
///                      });

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "deckhand/messages/model.hpp"

namespace deckhand::supervisor {

/// One action of a probe or lifecycle handler: exactly one member is set.
struct handler_action {
  wire::opt<wire::exec_action> exec;
  wire::opt<wire::http_get_action> http_get;
  wire::opt<wire::tcp_socket_action> tcp_socket;
  wire::opt<wire::sleep_action> sleep;

  static handler_action of(const wire::probe& p);
  static handler_action of(const wire::lifecycle_handler& h);
  /// "exec", "httpGet", "tcpSocket", "sleep" or "" (none set).
  std::string kind() const;
};

/// The container an action runs against.
struct handler_target {
  std::string container;   ///< its name, for logs
  std::string runtime_id;  ///< the OCI runtime's container id (exec)
  std::string pod_ip;      ///< default host of httpGet and tcpSocket; empty: 127.0.0.1
  std::vector<wire::container_port> ports;  ///< resolves named ports
  /// The User-Agent of httpGet (the kubelet sends kube-probe/MAJOR.MINOR for
  /// probes, kube-lifecycle/MAJOR.MINOR for hooks) unless httpHeaders set one.
  std::string user_agent = "kube-probe/1.32";
};

enum class handler_outcome {
  success,
  failure,
  unknown,  ///< could not be carried out; not a verdict on the container
};

/// How one action ended.
struct handler_result {
  handler_outcome outcome = handler_outcome::unknown;
  /// Why it failed, in the kubelet's words (the text after "Liveness probe
  /// failed: "); for exec, the command's output. May be empty on success.
  std::string message;
  /// exec: stdout then stderr; httpGet: the response body (10 KiB at most).
  std::string output;
  int exit_code = 0;       ///< exec only
  bool timed_out = false;  ///< failure because the timeout passed
};

/// Identifies a run() for cancel().
using handler_id = uint64_t;

class handler_executor {
 public:
  using completion = std::function<void(handler_result)>;

  struct options {
    std::filesystem::path runtime_root;   ///< --root of the OCI runtime
    std::string runtime_binary = "runc";  ///< name in PATH or path
    std::string log_fields;               ///< "pod=NS/NAME uid=UID"
  };

  explicit handler_executor(options opts);
  /// Stops the thread; exec children still running are killed and reaped.
  /// Completions not yet called are dropped.
  ~handler_executor();
  handler_executor(const handler_executor&) = delete;
  handler_executor& operator=(const handler_executor&) = delete;

  /// Starts `what` against `target` and returns at once (never blocks on the
  /// action). `done` is called exactly once, on the executor's thread, never
  /// from inside run(), after the action ended or `timeout` passed (a
  /// timeout <= 0 means 1 s, the Kubernetes default) -- unless cancel()
  /// comes first. `done` must be quick and must not call back into the
  /// executor synchronously other than run() and cancel() (forward it, e.g.
  /// with caf::anon_send).
  handler_id run(handler_action what, handler_target target, std::chrono::milliseconds timeout,
                 completion done);

  /// Abandons a run: its completion will not be called (if it is being
  /// called right now, cancel() waits for it to return). An exec is killed.
  /// Unknown or finished ids are ignored.
  void cancel(handler_id id);

  /// Actions in flight (for tests and metrics).
  std::size_t in_flight() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace deckhand::supervisor
