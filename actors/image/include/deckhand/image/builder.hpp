#pragma once

/// Building small images locally: the demo and tests cannot pull from a
/// public registry, so they package a directory as an OCI image layout.

#include <filesystem>
#include <string>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_record.hpp"

namespace deckhand::image {

/// Writes an OCI image layout at `layout_dir` (created if needed): one gzip
/// layer holding `rootfs_dir`, a linux/amd64 config carrying `cfg`, a
/// manifest, and index.json naming it `ref_name` through the
/// `org.opencontainers.image.ref.name` annotation. Returns the manifest digest.
result<std::string> build_layout(const std::filesystem::path& rootfs_dir,
                                 const std::filesystem::path& layout_dir,
                                 const std::string& ref_name, const image_config& cfg);

/// Fills `dir` with a minimal root filesystem around the host's static
/// busybox (/bin/busybox from Debian's busybox-static): bin/busybox, one
/// symlink in bin/ per applet, etc/passwd, etc/group, and empty tmp, proc,
/// sys, dev, root. Returns a falsy error on success.
error make_busybox_rootfs(const std::filesystem::path& dir,
                          const std::filesystem::path& busybox = "/bin/busybox");

}  // namespace deckhand::image
