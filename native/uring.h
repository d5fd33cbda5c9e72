// io_uring rings for the virtio-blk I/O threads (native/uring.cc).
#pragma once
#include <napi.h>

namespace nv {

// Adds the uring* functions to the addon's exports.
void InitUring(Napi::Env env, Napi::Object exports);

}  // namespace nv
