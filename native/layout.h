/* Tables of KVM constants and struct field offsets (native/layout.c). */
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct nv_constant {
  const char* name;
  double value;
};

struct nv_field {
  const char* type;  /* struct name */
  const char* field; /* field name, or "size" for sizeof */
  double value;
};

extern const struct nv_constant nv_constants[];
extern const size_t nv_constants_count;
extern const struct nv_field nv_fields[];
extern const size_t nv_fields_count;

#ifdef __cplusplus
}
#endif
