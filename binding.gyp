{
  "targets": [
    {
      "target_name": "nodevisor",
      "sources": ["native/addon.cc", "native/layout.c", "native/uring.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-latomic", "-luring"],
      "cflags_cc": ["-std=c++17", "-O2", "-mcx16", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
