// Constants and struct layouts taken from the kernel headers at build time,
// so the TypeScript side never hand-encodes an ioctl number or an offset.
#pragma once
#include <napi.h>

namespace nodevisor {
Napi::Object Constants(Napi::Env env);
Napi::Object Layout(Napi::Env env);
}  // namespace nodevisor
