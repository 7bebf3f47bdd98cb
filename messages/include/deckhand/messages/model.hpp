#pragma once

/// The Kubernetes object model as deckhand's processes see it: the subset of
/// Pod, Service and Node that the node components act on. JSON field names are
/// Kubernetes' own; the API server keeps the full objects it was given, and
/// these structs are what it feeds to kubelets and proxies.

#include "deckhand/messages/model/container.hpp"
#include "deckhand/messages/model/container_env.hpp"
#include "deckhand/messages/model/event.hpp"
#include "deckhand/messages/model/meta.hpp"
#include "deckhand/messages/model/node.hpp"
#include "deckhand/messages/model/pod.hpp"
#include "deckhand/messages/model/probe.hpp"
#include "deckhand/messages/model/service.hpp"
#include "deckhand/messages/model/volume.hpp"
