// Helpers shared by the addon's source files: errno errors with a code,
// integer arguments, the bytes behind typed arrays and buffers.
#pragma once
#include <napi.h>

#include <string.h>

#include <string>

namespace nv {

inline Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  const char* name = strerrorname_np(err);
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

inline bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  if (i >= info.Length()) return false;
  if (info[i].IsNumber()) { *out = info[i].As<Napi::Number>().Int64Value(); return true; }
  if (info[i].IsBigInt()) {
    bool lossless;
    *out = static_cast<int64_t>(info[i].As<Napi::BigInt>().Uint64Value(&lossless));
    return true;
  }
  return false;
}

inline Napi::Value TypeError(Napi::Env env, const char* msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

inline size_t ElementSize(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    default: return 8;
  }
}

// Returns the bytes behind a TypedArray/DataView/ArrayBuffer/SharedArrayBuffer.
inline bool BufferBytes(Napi::Env env, Napi::Value v, void** data, size_t* len) {
  napi_status s;
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t n, off;
    napi_value ab;
    s = napi_get_typedarray_info(env, v, &t, &n, data, &ab, &off);
    if (s != napi_ok) return false;
    *len = n * ElementSize(t);
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t off;
    s = napi_get_dataview_info(env, v, len, data, &ab, &off);
    return s == napi_ok;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
  }
  return false;
}

}  // namespace nv
