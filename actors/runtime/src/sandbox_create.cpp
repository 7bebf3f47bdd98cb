// Building a pod's sandbox: the part every supervised back-end shares (plan,
// pod directory, sandbox.json, bundles), with the back-end's hooks for what
// isolates the pod on the host.

#include <vector>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/oci/bundle.hpp"
#include "deckhand/runtime/container_process.hpp"
#include "deckhand/runtime/network.hpp"
#include "deckhand/runtime/pod_env.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "deckhand/runtime/supervised_backend.hpp"
#include "deckhand/runtime/volumes.hpp"
#include "sandbox_store.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

result<wire::sandbox_status> create_sandbox(const runtime_options& opts,
                                            const supervised_backend& backend,
                                            const image::image_store& images, const wire::pod& p) {
  if (auto err = validate_pod(p))
    return err;
  const auto& uid = p.metadata.uid;
  auto lg = log::get();

  // Everything that can be checked is checked before anything is created.
  struct planned {
    const wire::container* spec;
    fs::path lower;
    image::image_config config;
  };
  if (auto err = validate_volumes(p))
    return err;
  // Before anything exists: the values a container's env needs from the
  // sandbox are placeholders here, resolved for real once it is set up.
  pod_env_context env_ctx;
  env_ctx.host_ip = p.status.host_ip;
  if (env_ctx.host_ip.empty())
    if (auto ip = node_address(opts.bridge_name))
      env_ctx.host_ip = ip->to_string();
  env_ctx.node = read_node_allocatable(opts.data_dir);
  std::vector<planned> plan;
  std::vector<const wire::container*> all;
  for (const auto& c : p.spec.init_containers)
    all.push_back(&c);
  for (const auto& c : p.spec.containers)
    all.push_back(&c);
  for (const auto* cp : all) {
    const auto& c = *cp;
    if (auto err = backend.check_container(c))
      return err;
    auto rec = images.find(c.image);
    if (!rec) {
      if (rec.err().code == errc::not_found)
        return error{errc::not_found, "image \"" + c.image +
                                          "\" is not present on the node; import it with: deckhand "
                                          "image import PATH"};
      return error{rec.err().code, "image \"" + c.image + "\": " + rec.err().message};
    }
    // After the image, as the kubelet's generateContainerConfig runs after
    // EnsureImageExists.
    auto env = resolve_env(p, c, env_ctx);
    if (!env)
      return env.err();
    auto lower = images.rootfs_path(*rec);
    auto proc = make_container_process(c, rec->config, lower, &*env);
    if (!proc)
      return std::move(proc).err();
    plan.push_back({&c, lower, rec->config});
  }

  auto dir = pod_dir::root(opts.data_dir, uid);
  std::error_code ec;
  if (fs::exists(dir, ec))
    if (auto err = remove_sandbox(opts, uid))
      return err;

  auto fail = [&](error err) -> result<wire::sandbox_status> {
    lg->warn("msg=\"sandbox creation failed, undoing\" pod={}/{} uid={} error=\"{}\"",
             pod_namespace(p.metadata.namespace_), p.metadata.name, uid, err.message);
    if (auto undo = remove_sandbox(opts, uid))
      lg->error("msg=\"undo failed\" uid={} error=\"{}\"", uid, undo.message);
    return err;
  };

  fs::create_directories(dir / "containers", ec);
  if (ec)
    return error::from_errno("mkdir " + dir.string(), ec.value());
  if (auto err = fsutil::write_file_atomic(pod_dir::pod_json(dir), wire::to_json(p).dump(),
                                           fsutil::durability::process_crash))
    return fail(err);

  sandbox_record rec;
  rec.uid = uid;
  rec.namespace_ = pod_namespace(p.metadata.namespace_);
  rec.name = p.metadata.name;
  rec.state = "creating";
  rec.host_network = p.spec.host_network;
  if (!p.spec.host_network)
    rec.netns = pod_dir::netns(dir).string();
  rec.created_at = now_rfc3339();
  for (const auto* c : all)
    rec.containers.push_back(c->name);
  if (auto err = write_record(dir, rec))
    return fail(err);

  const container_options copts{paths::kubelet_dir(opts.data_dir) / "seccomp", std::nullopt};
  auto shared = backend.set_up_pod(opts, p, dir, env_ctx.node, copts);
  if (!shared)
    return fail(shared.err());
  rec.pod_ip = shared->pod_ip;
  env_ctx.pod_ip = shared->pod_ip;

  for (auto& step : plan) {
    auto b = pod_dir::bundle(dir, step.spec->name);
    auto rootfs = backend.set_up_rootfs(b, step.lower);
    if (!rootfs)
      return fail(rootfs.err());
    auto env = resolve_env(p, *step.spec, env_ctx);
    if (!env)
      return fail(env.err());
    auto proc = make_container_process(*step.spec, step.config, step.lower, &*env);
    if (!proc)
      return fail(proc.err());
    auto built = container_bundle_spec(p, *step.spec, *proc, *rootfs, copts);
    if (!built)
      return fail(built.err());
    if (auto err = backend.join_pod(*built, *step.spec, *shared))
      return fail(err);
    if (auto r = oci::write_bundle(b, *built); !r)
      return fail(r.err());
  }

  rec.state = "ready";
  if (auto err = write_record(dir, rec))
    return fail(err);
  lg->info("msg=\"sandbox created\" pod={}/{} uid={} containers={} ip={} network_us={}",
           rec.namespace_, rec.name, uid, rec.containers.size(), rec.pod_ip,
           shared->network_setup.count());
  auto st = read_sandbox(opts, uid);
  if (!st)
    return fail(st.err());
  return st;
}

}  // namespace deckhand::runtime
