/// libFuzzer harness: arbitrary bytes as an image layer (tar, tar+gzip,
/// tar+zstd) applied to a fresh directory. Finds crashes and sanitizer
/// reports in the unpacker; escapes are checked by a canary beside the root.

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "deckhand/image/layer.hpp"

namespace fs = std::filesystem;

namespace {

struct sandbox {
  fs::path base;
  fs::path canary;
  sandbox() {
    std::string tmpl = (fs::temp_directory_path() / "deckhand-fuzz-layer-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      std::abort();
    base = tmpl;
    canary = base / "canary";
    fs::create_directories(canary);
  }
  ~sandbox() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
};

sandbox& box() {
  static sandbox s;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fs::path root = box().base / "root";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root);
  deckhand::image::unpack_options opts;
  opts.max_uncompressed_size = 64 << 20;
  (void)deckhand::image::unpack_layer(data, size, root, opts);
  // Nothing may appear next to the root or inside the canary directory.
  for (const auto& e : fs::directory_iterator(box().base))
    if (e.path() != root && e.path() != box().canary)
      std::abort();
  if (!fs::is_empty(box().canary))
    std::abort();
  fs::remove_all(root, ec);
  return 0;
}
