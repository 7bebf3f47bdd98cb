#include "deckhand/cli/node_client.hpp"

#include <future>
#include <memory>

#include "deckhand/common/paths.hpp"

namespace deckhand::cli {

namespace {

transport::bridge_config cli_bridge_config() {
  transport::bridge_config cfg;
  cfg.component = "deckhand-cli";
  return cfg;
}

}  // namespace

node_client::node_client(std::filesystem::path data_dir)
    : data_dir_(std::move(data_dir)), bridge_(cli_bridge_config()) {
  bridge_.start();
}

node_client::~node_client() { bridge_.stop(); }

result<int> node_client::dealer_for(const std::string& component) {
  if (auto it = dealers_.find(component); it != dealers_.end())
    return it->second;
  auto sock = bridge_.connect_dealer(paths::ipc_endpoint(data_dir_, component));
  if (!sock)
    return std::move(sock).err();
  dealers_.emplace(component, *sock);
  return *sock;
}

result<wire::envelope> node_client::call(const std::string& component, wire::envelope req,
                                         std::chrono::milliseconds timeout,
                                         const std::atomic<bool>* cancel) {
  auto sock = dealer_for(component);
  if (!sock)
    return std::move(sock).err();
  auto prom = std::make_shared<std::promise<result<wire::envelope>>>();
  auto fut = prom->get_future();
  bridge_.request(*sock, std::move(req), timeout,
                  [prom](result<wire::envelope> r) { prom->set_value(std::move(r)); });
  // The bridge answers every request exactly once, at the latest at its
  // deadline; cancelling only stops us from waiting for it.
  while (fut.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (cancel && cancel->load())
      return error{errc::unavailable, "cancelled"};
  }
  auto r = fut.get();
  if (!r)
    return error{r.err().code, component + ": " + r.err().message};
  return r;
}

std::map<std::string, result<wire::pong>>
node_client::ping_all(const std::vector<std::string>& components,
                      std::chrono::milliseconds timeout) {
  std::map<std::string, std::future<result<wire::envelope>>> waiting;
  std::map<std::string, result<wire::pong>> out;
  for (const auto& name : components) {
    auto sock = dealer_for(name);
    if (!sock) {
      out.emplace(name, std::move(sock).err());
      continue;
    }
    auto prom = std::make_shared<std::promise<result<wire::envelope>>>();
    waiting.emplace(name, prom->get_future());
    bridge_.request(*sock, wire::make_envelope(wire::ping{}), timeout,
                    [prom](result<wire::envelope> r) { prom->set_value(std::move(r)); });
  }
  for (auto& [name, fut] : waiting) {
    auto env = fut.get();
    if (!env)
      out.emplace(name, std::move(env).err());
    else
      out.emplace(name, wire::decode_as<wire::pong>(*env));
  }
  return out;
}

}  // namespace deckhand::cli
