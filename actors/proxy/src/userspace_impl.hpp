#pragma once

/// The userspace data plane's internals, shared by its files: the targets
/// registered with epoll (listeners, TCP connections, UDP sessions), the
/// per-service-port state, and the forwarding thread's class. userspace.cpp
/// has the thread and its timers, userspace_services.cpp applies a service
/// map, userspace_affinity.cpp chooses backends, userspace_tcp.cpp and
/// userspace_udp.cpp forward.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "deckhand/common/log.hpp"
#include "deckhand/common/unique_fd.hpp"
#include "deckhand/proxy/userspace.hpp"

namespace deckhand::proxy {

namespace userspace_detail {

using clock_type = std::chrono::steady_clock;

using common::unique_fd;

inline std::string to_string(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

inline bool same_endpoint(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

inline std::optional<sockaddr_in> parse_ipv4(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1)
    return std::nullopt;
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

/// Closes `fd` so that the peer sees a reset rather than an orderly close.
inline void abort_socket(unique_fd& fd) {
  if (!fd)
    return;
  linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.reset();
}

/// "TCP/127.96.0.10:80": the identity of a listening socket.
inline std::string listen_key(bool udp, const sockaddr_in& a) {
  return std::string(udp ? "UDP/" : "TCP/") + to_string(a);
}

enum class target_kind { listener, tcp, udp_session };

/// Something registered with epoll under an id; events for ids no longer in
/// the table (closed in the same batch) are dropped.
struct target {
  explicit target(target_kind k) : kind(k) {}
  virtual ~target() = default;
  target_kind kind;
};

struct affinity_record {
  sockaddr_in backend{};
  clock_type::time_point last_used;
};

/// One service_port_entry as the forwarding thread sees it: the backends new
/// connections may go to, the round-robin position and the affinity table.
/// Shared by the entry's ClusterIP and NodePort listeners (affinity is per
/// Service port, whichever way the client came in) and by connections still
/// choosing a backend.
struct service_state {
  service_port_entry entry;
  bool udp = false;
  std::vector<sockaddr_in> backends;
  std::size_t rr_next = 0;
  std::unordered_map<uint32_t, affinity_record> affinity;
  uint64_t cluster_listener = 0;  ///< target id, 0: none
  uint64_t node_listener = 0;
  std::optional<sockaddr_in> cluster_addr;
  std::optional<sockaddr_in> node_addr;

  bool has_backend(const sockaddr_in& b) const {
    return std::any_of(backends.begin(), backends.end(),
                       [&](const sockaddr_in& x) { return same_endpoint(x, b); });
  }
};

struct listener : target {
  listener() : target(target_kind::listener) {}
  unique_fd fd;
  bool udp = false;
  bool wildcard = false;  ///< bound to 0.0.0.0: UDP replies name their source
  sockaddr_in addr{};
  std::string key;
  std::shared_ptr<service_state> svc;
  bool paused = false;  ///< accept hit EMFILE; resumed by housekeeping
  /// UDP: sessions by client address.
  std::unordered_map<uint64_t, uint64_t> sessions;
};

inline uint64_t client_key(const sockaddr_in& a) {
  return (uint64_t(a.sin_addr.s_addr) << 16) | a.sin_port;
}

/// One direction of a TCP connection.
struct direction {
  int from = -1;
  int to = -1;
  unique_fd pipe_r, pipe_w;  ///< splice mode
  std::vector<char> buf;     ///< read/write mode
  std::size_t buf_off = 0;
  std::size_t pending = 0;  ///< bytes read but not yet written
  std::size_t capacity = 0;
  bool eof = false;
  bool shut = false;
  bool done() const { return eof && pending == 0 && shut; }
};

struct tcp_conn : target {
  tcp_conn() : target(target_kind::tcp) {}
  unique_fd client, backend;
  sockaddr_in client_addr{};
  sockaddr_in backend_addr{};
  std::shared_ptr<service_state> svc;
  bool connected = false;
  int attempts = 0;
  std::vector<sockaddr_in> tried;
  direction up, down;  ///< client→backend, backend→client
};

struct udp_session : target {
  udp_session() : target(target_kind::udp_session) {}
  unique_fd fd;
  uint64_t listener_id = 0;
  sockaddr_in client{};
  sockaddr_in backend{};
  in_addr local{};  ///< the address the client sent to (wildcard listeners)
  clock_type::time_point last_active;
};

enum class pump_status { open, closed, failed };

}  // namespace userspace_detail

using namespace userspace_detail;

class userspace_data_plane::impl {
 public:
  explicit impl(userspace_options opts);

  ~impl();

  /// Runs `f` on the I/O thread and waits for it.
  void call(const std::function<void()>& f);

  result<void> apply(const service_map& desired);

  result<void> cleanup();

  userspace_stats stats();

  std::vector<userspace_entry_error> entry_errors();

 private:
  // ---- thread plumbing -------------------------------------------------

  void wake();

  void run();

  int next_timeout_ms();

  uint64_t add_target(std::unique_ptr<target> t);

  /// Registers `fd` for target `id`; `side` tells a TCP connection's two
  /// sockets apart (0: client, 1: backend).
  bool watch(int fd, uint64_t id, uint32_t events, unsigned side = 0);

  void close_target(uint64_t id);

  // ---- apply -----------------------------------------------------------

  struct plan {
    const service_port_entry* entry = nullptr;
    std::string key;
    bool udp = false;
    std::optional<sockaddr_in> cluster, node;
    std::string error;
  };

  std::string validate(const service_port_entry& e, plan& p);

  std::string check_port(int port, const char* what) const;

  result<void> apply_on_thread(const service_map& desired);

  void close_listener(uint64_t& id);

  void update_backends(service_state& s, const service_port_entry& e);

  result<uint64_t> open_listener(const std::shared_ptr<service_state>& svc, const sockaddr_in& a);

  // ---- backend choice ----------------------------------------------------

  /// Round robin over the usable backends not yet tried by this client; under
  /// ClientIP affinity the client's recent backend first.
  std::optional<sockaddr_in> pick(service_state& s, uint32_t client_ip,
                                  const std::vector<sockaddr_in>& tried);

  // ---- TCP ---------------------------------------------------------------

  void on_tcp_listener(listener& l);

  /// Tries the next backend for connection `id`; resets the client when there
  /// is none left to try.
  void start_connect(uint64_t id);

  void on_tcp(uint64_t id, uint32_t events, unsigned side);

  void on_connected(uint64_t id);

  bool setup(direction& d, int from, int to);

  /// Moves what can be moved now in one direction; stops at EAGAIN on both
  /// ends, as the sockets are edge-triggered.
  pump_status pump_direction(direction& d);

  /// Pumps the direction reading from the event's socket if `reading`, the
  /// one writing to it if `writing`; closes the connection when it is over.
  void pump(uint64_t id, bool reading, bool writing, bool from_client);

  // ---- UDP ---------------------------------------------------------------

  void on_udp_listener(listener& l, uint64_t lid);

  uint64_t open_session(listener& l, uint64_t lid, const sockaddr_in& peer, in_addr local);

  /// A backend that answers with ICMP port unreachable: the next datagram
  /// from this client starts a session to another backend.
  void drop_session(uint64_t sid);

  void on_udp_session(uint64_t sid);

  // ---- timers ------------------------------------------------------------

  std::chrono::milliseconds udp_sweep_interval() const;

  void schedule_housekeeping(std::chrono::milliseconds in);

  void run_timers();

  static constexpr std::size_t max_affinity_records = 65536;

  userspace_options opts_;
  int unprivileged_port_start_ = 1024;
  bool privileged_ = false;
  error init_error_;

  unique_fd epoll_, wake_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::deque<std::function<void()>> commands_;
  bool stopping_ = false;

  // Everything below belongs to the I/O thread.
  uint64_t next_id_ = 1;  // 0 is the wake-up eventfd
  std::unordered_map<uint64_t, std::unique_ptr<target>> targets_;
  std::map<std::string, std::shared_ptr<service_state>> services_;
  std::map<std::string, uint64_t> listen_index_;
  std::multimap<clock_type::time_point, std::pair<uint64_t, int>> connect_deadlines_;
  std::optional<clock_type::time_point> housekeeping_due_;
  clock_type::time_point next_affinity_sweep_{};
  std::vector<userspace_entry_error> errors_;
  std::map<std::string, std::string> logged_errors_;
  std::array<char, 65536> udp_buf_{};
  userspace_stats stats_;
};

}  // namespace deckhand::proxy
