#pragma once

/// Seccomp filters for containers, as OCI `linux.seccomp` JSON text.

#include <string>
#include <vector>

#include "deckhand/common/result.hpp"

namespace deckhand::oci {

/// Kubernetes' `RuntimeDefault` profile for a container with the effective
/// capabilities `caps` ("CAP_..." names).
///
/// Docker's default profile is an allow list (defaultAction SCMP_ACT_ERRNO).
/// This one has the same effect written the other way round: everything is
/// allowed except the syscalls that Docker's profile does not allow, each of
/// which fails with EPERM; and, exactly as in Docker's profile, a syscall that
/// a capability unlocks (mount/unshare/setns with CAP_SYS_ADMIN, reboot with
/// CAP_SYS_BOOT, ...) is only denied when the container lacks that capability.
/// Keeping the allow-by-default form means a syscall newer than the profile
/// behaves as it does without seccomp instead of failing with EPERM.
/// Differences from Docker kept on purpose: ptrace is allowed (Docker allows it
/// too on kernels >= 4.8); io_uring is allowed (containerd's profile does).
std::string runtime_default_seccomp(const std::vector<std::string>& caps);

/// A `Localhost` profile: Docker/containerd seccomp JSON (defaultAction,
/// architectures or archMap, syscalls with name/names, action, errnoRet, args,
/// includes/excludes by caps, arches and minKernel), converted to OCI
/// `linux.seccomp` for this host's architecture and the container's `caps`.
/// A profile already in OCI form passes through. `errc::invalid` for JSON that
/// is not such a profile.
result<std::string> seccomp_from_profile(const std::string& profile_json,
                                         const std::vector<std::string>& caps);

}  // namespace deckhand::oci
