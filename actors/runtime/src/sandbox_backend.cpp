#include "deckhand/runtime/sandbox_backend.hpp"

#include "deckhand/runtime/oci_backend.hpp"
#include "deckhand/runtime/process_backend.hpp"
#include "deckhand/runtime/sandbox_service.hpp"
#include "deckhand/runtime/sim_backend.hpp"

namespace deckhand::runtime {

namespace {

/// Every back-end, in the order the command line's help lists them.
std::vector<std::shared_ptr<const sandbox_backend>> all_backends() {
  return {std::make_shared<oci_backend>(), std::make_shared<process_backend>(),
          std::make_shared<sim_backend>()};
}

}  // namespace

result<std::shared_ptr<const sandbox_backend>> make_sandbox_backend(std::string_view name) {
  std::string known;
  for (auto& b : all_backends()) {
    if (b->name() == name)
      return b;
    known += (known.empty() ? "" : ", ") + std::string(b->name());
  }
  return error{errc::invalid,
               "unknown back-end \"" + std::string(name) + "\" (one of: " + known + ")"};
}

std::vector<std::string> sandbox_backend_names() {
  std::vector<std::string> out;
  for (const auto& b : all_backends())
    out.emplace_back(b->name());
  return out;
}

backend_actors supervised_backend::spawn(caf::actor_system& sys, transport::bridge& bus,
                                         const runtime_options& opts,
                                         std::shared_ptr<image::image_store> images,
                                         caf::actor supervisors) const {
  backend_actors a;
  auto self = std::static_pointer_cast<const supervised_backend>(shared_from_this());
  a.sandboxes = spawn_sandbox_service(sys, bus, opts, std::move(self), std::move(images),
                                      std::move(supervisors));
  a.containers = spawn_container_service(sys, bus, opts);
  return a;
}

}  // namespace deckhand::runtime
