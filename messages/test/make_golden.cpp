// Writes tests/golden samples. Never regenerate an existing sample: they pin
// what older versions of deckhand put on the wire.
#include <fstream>
#include <iostream>

#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

using namespace deckhand;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_golden DIR\n";
    return 2;
  }
  std::string dir = argv[1];
  wire::run_pod_request req;
  auto& p = req.pod_;
  p.metadata.name = "web";
  p.metadata.namespace_ = "default";
  p.metadata.uid = "0b8f4a52-3c4e-4f0e-9d55-4d8b8a1c2e11";
  p.metadata.labels = {{"app", "web"}};
  p.spec.node_name = "node-a";
  p.spec.restart_policy = "OnFailure";
  wire::container c;
  c.name = "main";
  c.image = "deckhand.local/busybox:demo";
  c.command = {"sh", "-c", "echo hi"};
  c.env = {{"A", "1"}};
  p.spec.containers.push_back(c);
  wire::container_status cs;
  cs.name = "main";
  cs.restart_count = 2;
  cs.state.terminated.exit_code = 1;
  cs.state.terminated.reason = "Error";
  cs.state.terminated.finished_at = "2026-11-27T20:00:00Z";
  p.status.container_statuses.push_back(cs);
  p.status.phase = "Running";
  std::ofstream(dir + "/run_pod_request.v1.0.msgpack", std::ios::binary) << wire::encode_body(req);
  wire::header h;
  h.type = wire::run_pod_request::type_id;
  h.correlation_id = 42;
  h.incarnation = 0x0102030405060708u;
  auto hb = wire::encode_header(h);
  std::ofstream(dir + "/header.v1.0.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(hb.data()), hb.size());
  return 0;
}
