#include "deckhand/kubelet/api_client.hpp"
#include "deckhand/kubelet/runtime_client.hpp"
#include "deckhand/messages/codec.hpp"

namespace deckhand::kubelet {

namespace {

/// Sends `req` and decodes the reply as `Rep` (error replies included).
template <class Rep, class Req>
void send(const request_fn& request, int dealer, const Req& req, std::chrono::milliseconds deadline,
          reply_fn<Rep> done) {
  request(dealer, wire::make_envelope(req), deadline,
          [done = std::move(done)](result<wire::envelope> r) {
            if (!r) {
              done(std::move(r).err());
              return;
            }
            done(wire::decode_as<Rep>(*r));
          });
}

class bridge_runtime_client final : public runtime_client {
 public:
  bridge_runtime_client(request_fn request, int dealer)
      : request_(std::move(request)), dealer_(dealer) {}

  void pull_image(const wire::image_pull_request& req, std::chrono::milliseconds deadline,
                  reply_fn<wire::image_pull_reply> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }
  void run_pod(const wire::run_pod_request& req, std::chrono::milliseconds deadline,
               reply_fn<wire::run_pod_reply> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }
  void stop_pod(const wire::stop_pod_request& req, std::chrono::milliseconds deadline,
                reply_fn<wire::sandbox_status_reply> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }
  void remove_pod(const wire::remove_pod_request& req, std::chrono::milliseconds deadline,
                  reply_fn<wire::ack> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }
  void list_sandboxes(std::chrono::milliseconds deadline,
                      reply_fn<wire::list_sandboxes_reply> done) override {
    send(request_, dealer_, wire::list_sandboxes_request{}, deadline, std::move(done));
  }
  void container_stats(std::chrono::milliseconds deadline,
                       reply_fn<wire::container_stats_reply> done) override {
    send(request_, dealer_, wire::container_stats_request{}, deadline, std::move(done));
  }

 private:
  request_fn request_;
  int dealer_;
};

class bridge_api_client final : public api_client {
 public:
  bridge_api_client(request_fn request, int dealer)
      : request_(std::move(request)), dealer_(dealer) {}

  void list_pods(const wire::list_request& req, std::chrono::milliseconds deadline,
                 reply_fn<pod_list> done) override {
    request_(dealer_, wire::make_envelope(req), deadline,
             [done = std::move(done)](result<wire::envelope> r) {
               if (!r) {
                 done(std::move(r).err());
                 return;
               }
               auto list = wire::decode_as<wire::list_reply>(*r);
               if (!list) {
                 done(std::move(list).err());
                 return;
               }
               done(pod_list{std::move(*list), r->hdr.incarnation});
             });
  }
  void update_pod_status(const wire::pod_status_update& req, std::chrono::milliseconds deadline,
                         reply_fn<wire::ack> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }
  void finalize_pod(const wire::pod_finalize& req, std::chrono::milliseconds deadline,
                    reply_fn<wire::ack> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }
  void node_heartbeat(const wire::node_heartbeat& req, std::chrono::milliseconds deadline,
                      reply_fn<wire::ack> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }
  void renew_lease(const wire::lease_renew& req, std::chrono::milliseconds deadline,
                   reply_fn<wire::ack> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }
  void report_events(const wire::event_report& req, std::chrono::milliseconds deadline,
                     reply_fn<wire::ack> done) override {
    send(request_, dealer_, req, deadline, std::move(done));
  }

 private:
  request_fn request_;
  int dealer_;
};

}  // namespace

std::shared_ptr<runtime_client> make_runtime_client(request_fn request, int dealer) {
  return std::make_shared<bridge_runtime_client>(std::move(request), dealer);
}

std::shared_ptr<api_client> make_api_client(request_fn request, int dealer) {
  return std::make_shared<bridge_api_client>(std::move(request), dealer);
}

}  // namespace deckhand::kubelet
