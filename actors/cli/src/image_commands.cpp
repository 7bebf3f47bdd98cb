/// image pull and image rm.

#include "deckhand/cli/image_commands.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "deckhand/cli/node_client.hpp"
#include "deckhand/cli/printers.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/image/reference.hpp"

namespace deckhand::cli {

using namespace std::chrono_literals;

namespace {

/// A pull may take long; the runtime bounds each registry request itself.
constexpr auto pull_timeout = std::chrono::hours(1);

bool looks_like_id(const std::string& ref) {
  auto hex = ref.rfind("sha256:", 0) == 0 ? ref.substr(7) : ref;
  return hex.size() >= 12 && hex.find_first_not_of("0123456789abcdef") == std::string::npos;
}

/// Progress reports from the runtime's PUB socket, for one image.
class progress_feed {
 public:
  progress_feed(const std::filesystem::path& data_dir, std::string image)
      : image_(std::move(image)), bus_(config()) {
    // Progress is optional: without the socket the pull still works.
    (void)bus_.connect_sub(paths::runtime_pub_endpoint(data_dir), {"pull"},
                           [this](const std::string&, wire::envelope env) {
                             auto p = wire::decode_as<wire::image_pull_progress>(env);
                             if (!p || p->image != image_)
                               return;
                             std::lock_guard lk(mu_);
                             queue_.push_back(std::move(*p));
                             cv_.notify_all();
                           });
    bus_.start();
  }
  ~progress_feed() { bus_.stop(); }

  /// Reports received since the last call; waits up to `wait` for one unless
  /// `finished` is set meanwhile.
  std::deque<wire::image_pull_progress> take(std::chrono::milliseconds wait) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, wait, [&] { return !queue_.empty() || finished_; });
    return std::exchange(queue_, {});
  }

  void finish() {
    std::lock_guard lk(mu_);
    finished_ = true;
    cv_.notify_all();
  }

 private:
  static transport::bridge_config config() {
    transport::bridge_config cfg;
    cfg.component = "deckhand-cli";
    return cfg;
  }

  std::string image_;
  transport::bridge bus_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<wire::image_pull_progress> queue_;
  bool finished_ = false;
};

}  // namespace

std::string format_pull_progress(const wire::image_pull_progress& p, int width) {
  std::string line = p.image + ": " + p.phase;
  if (p.total > 0) {
    auto done = std::clamp<int64_t>(p.done, 0, p.total);
    if (width > 0) {
      int filled = static_cast<int>(done * width / p.total);
      line += " [" + std::string(static_cast<size_t>(filled), '#') +
              std::string(static_cast<size_t>(width - filled), ' ') + "]";
    }
    line += " " + human_size(done) + "/" + human_size(p.total);
  }
  return line;
}

int image_pull_command(const image_pull_options& opts, io_streams io) {
  auto name = image::normalize_reference(opts.ref);
  if (!name) {
    io.err << "error: " << name.err().message << "\n";
    return 1;
  }
  progress_feed feed(opts.node.data_dir, *name);
  wire::image_pull_request req;
  req.image = opts.ref;
  req.secrets = opts.secrets;
  // The request blocks; progress is drawn meanwhile on this thread.
  std::optional<result<wire::image_pull_reply>> reply;
  std::atomic<bool> replied{false};
  std::thread worker([&] {
    node_client node(opts.node.data_dir);
    reply.emplace(node.request<wire::image_pull_reply>("runtime", req, pull_timeout));
    replied.store(true, std::memory_order_release);
    feed.finish();
  });

  std::string last_phase;
  size_t drawn = 0;  // width of the line on the terminal
  auto show = [&](const wire::image_pull_progress& p) {
    if (opts.tty) {
      auto line = format_pull_progress(p);
      io.err << "\r" << line;
      if (line.size() < drawn)
        io.err << std::string(drawn - line.size(), ' ');
      drawn = line.size();
      io.err.flush();
    } else if (p.phase != last_phase) {
      io.err << format_pull_progress(p, 0) << "\n";
    }
    last_phase = p.phase;
  };
  for (;;) {
    auto batch = feed.take(200ms);
    // On a terminal only the latest report matters; a log wants each phase.
    if (opts.tty && !batch.empty())
      show(batch.back());
    else
      for (const auto& p : batch)
        show(p);
    if (batch.empty() && replied.load(std::memory_order_acquire))
      break;
  }
  worker.join();
  if (opts.tty && drawn > 0)
    io.err << "\r" << std::string(drawn, ' ') << "\r";
  if (!*reply) {
    io.err << "error: " << (*reply).err().message << "\n";
    return 1;
  }
  io.out << (*reply)->image.id << "\n";
  return 0;
}

int image_remove_command(const node_options& opts, const std::vector<std::string>& refs,
                         io_streams io) {
  node_client node(opts.data_dir);
  int rc = 0;
  for (const auto& ref : refs) {
    wire::image_remove_request req;
    req.image = ref;
    auto reply = node.request<wire::image_remove_reply>("runtime", req, 120s);
    if (!reply) {
      io.err << "error: " << reply.err().message << "\n";
      rc = 1;
      continue;
    }
    if (!looks_like_id(ref))
      io.out << "Untagged: " << ref << "\n";
    for (const auto& id : reply->removed)
      io.out << "Deleted: " << id << "\n";
  }
  return rc;
}

}  // namespace deckhand::cli
