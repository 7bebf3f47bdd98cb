#pragma once

/// Requests from the CLI to the node's component processes over the
/// transport: one bridge with a DEALER per component endpoint
/// (`paths::ipc_endpoint(DATA, NAME)`), blocking calls with deadlines.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::cli {

class node_client {
 public:
  explicit node_client(std::filesystem::path data_dir);
  ~node_client();
  node_client(const node_client&) = delete;
  node_client& operator=(const node_client&) = delete;

  /// Sends `req` to `component` and waits for the reply until `timeout`, or
  /// until `*cancel` becomes true (checked every 100 ms).
  result<wire::envelope> call(const std::string& component, wire::envelope req,
                              std::chrono::milliseconds timeout,
                              const std::atomic<bool>* cancel = nullptr);

  /// Typed `call`: an error reply becomes its error.
  template <class Reply, class Request>
  result<Reply> request(const std::string& component, const Request& req,
                        std::chrono::milliseconds timeout,
                        const std::atomic<bool>* cancel = nullptr) {
    auto env = call(component, wire::make_envelope(req), timeout, cancel);
    if (!env)
      return std::move(env).err();
    return wire::decode_as<Reply>(*env);
  }

  /// Pings all `components` at once; each result is a pong or an error.
  std::map<std::string, result<wire::pong>> ping_all(const std::vector<std::string>& components,
                                                     std::chrono::milliseconds timeout);

 private:
  result<int> dealer_for(const std::string& component);

  std::filesystem::path data_dir_;
  transport::bridge bridge_;
  std::map<std::string, int> dealers_;
};

}  // namespace deckhand::cli
