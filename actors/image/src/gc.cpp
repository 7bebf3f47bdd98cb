#include <algorithm>
#include <cerrno>
#include <ctime>
#include <map>

#include <sys/stat.h>
#include <sys/statvfs.h>

#include "deckhand/common/log.hpp"
#include "deckhand/image/puller.hpp"

namespace deckhand::image {

namespace {

/// Used space of the filesystem holding `p`, in percent, the way `df` rounds.
result<int> statvfs_usage(const std::filesystem::path& p) {
  struct statvfs vfs {};
  if (::statvfs(p.c_str(), &vfs) != 0)
    return error::from_errno("statvfs " + p.string());
  unsigned long long used = vfs.f_blocks - vfs.f_bfree;
  unsigned long long avail = used + vfs.f_bavail;
  if (avail == 0)
    return 0;
  return static_cast<int>((used * 100 + avail - 1) / avail);
}

std::int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

result<gc_report> collect_images(image_store& store, const gc_policy& policy,
                                 const std::set<std::string>& in_use_ids,
                                 std::function<int()> usage_percent) {
  if (policy.high_percent < 0 || policy.high_percent > 100 || policy.low_percent < 0 ||
      policy.low_percent > policy.high_percent)
    return error(errc::invalid, "image GC thresholds must satisfy 0 <= low <= high <= 100");
  auto usage = [&]() -> result<int> {
    if (usage_percent)
      return usage_percent();
    return statvfs_usage(store.root());
  };
  gc_report report;
  auto u = usage();
  if (!u)
    return u.err();
  report.usage_percent_before = report.usage_percent_after = static_cast<std::uint64_t>(*u);
  if (*u < policy.high_percent)
    return report;

  auto images = store.list();
  // How many images keep each blob: a blob is freed with its last image.
  std::map<std::string, int> blob_refs;
  for (const auto& r : images)
    for (const auto& b : r.blobs)
      ++blob_refs[b];
  std::int64_t newest_allowed =
      now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(policy.min_age).count();
  std::vector<image_record> victims;
  for (const auto& r : images)
    if (!in_use_ids.count(r.id) && r.last_used <= newest_allowed)
      victims.push_back(r);
  std::sort(victims.begin(), victims.end(), [](const image_record& a, const image_record& b) {
    return a.last_used != b.last_used ? a.last_used < b.last_used : a.id < b.id;
  });
  log::get()->info("image GC started usage={} high={} low={} candidates={}", *u,
                   policy.high_percent, policy.low_percent, victims.size());
  for (const auto& v : victims) {
    if (*u <= policy.low_percent)
      break;
    std::uint64_t freed = 0;
    for (const auto& b : v.blobs) {
      if (blob_refs[b] != 1)
        continue;
      struct stat st;
      if (::stat(store.blob_path(b).c_str(), &st) == 0)
        freed += static_cast<std::uint64_t>(st.st_size);
    }
    auto removed = store.remove(v.id);
    if (!removed) {
      if (removed.err().code == errc::not_found)
        continue;  // removed meanwhile
      return removed.err();
    }
    for (const auto& b : v.blobs)
      --blob_refs[b];
    report.removed.push_back(v.id);
    report.freed_bytes += freed;
    log::get()->info("image GC removed id={} freed_bytes={}", v.id, freed);
    u = usage();
    if (!u)
      return u.err();
    report.usage_percent_after = static_cast<std::uint64_t>(*u);
  }
  if (*u > policy.low_percent)
    log::get()->warn("image GC could not reach the low threshold usage={} low={}", *u,
                     policy.low_percent);
  return report;
}

}  // namespace deckhand::image
