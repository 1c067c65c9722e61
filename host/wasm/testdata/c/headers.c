// headers.c is the header-editing test plugin of ../tinygo/headers written in
// plain C against the raw proxy-wasm ABI 0.2.1, with no SDK and no libc, so
// that the host's tests see the smallest module a real plugin can be: it
// imports only the five env.proxy_* functions it calls and exports only the
// callbacks it implements.
//
// On request headers it adds "x-wasm: c", replaces the value of "x-replace"
// with "replaced" (only when the header is there) and removes "x-remove"; on
// response headers it adds "x-wasm-response: yes". It logs one line at info
// level per callback.
//
// Build (host/wasm/testdata/build.sh does this):
//
//	clang-19 --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic \
//	    -o headers.wasm headers.c
//
// Memory the host asks for with proxy_on_memory_allocate comes from a 64 KiB
// arena that is reset at the start of every callback (the plugin never keeps
// what the host gives it); a request for more than is left gets 0.

typedef unsigned int u32;
typedef unsigned long size_t;

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

// Status codes, map types, log levels and actions of the ABI.
enum { STATUS_OK = 0, STATUS_NOT_FOUND = 1 };
enum { MAP_REQUEST_HEADERS = 0, MAP_RESPONSE_HEADERS = 2 };
enum { LOG_INFO = 2 };
enum { ACTION_CONTINUE = 0 };

IMPORT(proxy_log) u32 proxy_log(u32 level, const char *msg, size_t msg_size);
IMPORT(proxy_get_header_map_value)
u32 proxy_get_header_map_value(u32 map, const char *key, size_t key_size,
                               const char **value, size_t *value_size);
IMPORT(proxy_add_header_map_value)
u32 proxy_add_header_map_value(u32 map, const char *key, size_t key_size,
                               const char *value, size_t value_size);
IMPORT(proxy_replace_header_map_value)
u32 proxy_replace_header_map_value(u32 map, const char *key, size_t key_size,
                                   const char *value, size_t value_size);
IMPORT(proxy_remove_header_map_value)
u32 proxy_remove_header_map_value(u32 map, const char *key, size_t key_size);

// S expands a string literal to its pointer and length.
#define S(lit) lit, sizeof(lit) - 1

// ---- memory for the host ----

static _Alignas(16) char arena[64 * 1024];
static size_t arena_used;

static void arena_reset(void) { arena_used = 0; }

EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) {
  size_t start = (arena_used + 15) & ~(size_t)15;
  if (size > sizeof(arena) || start > sizeof(arena) - size) {
    return 0;
  }
  arena_used = start + size;
  return arena + start;
}

// ---- lifecycle ----

EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}

EXPORT(proxy_on_context_create)
void proxy_on_context_create(u32 context_id, u32 parent_context_id) {}

EXPORT(proxy_on_vm_start)
u32 proxy_on_vm_start(u32 root_context_id, u32 vm_configuration_size) {
  return 1;
}

EXPORT(proxy_on_configure)
u32 proxy_on_configure(u32 root_context_id, u32 plugin_configuration_size) {
  return 1;
}

EXPORT(proxy_on_done) u32 proxy_on_done(u32 context_id) { return 1; }

EXPORT(proxy_on_delete) void proxy_on_delete(u32 context_id) {}

// ---- HTTP ----

EXPORT(proxy_on_request_headers)
u32 proxy_on_request_headers(u32 context_id, u32 num_headers, u32 end_of_stream) {
  const char *value;
  size_t value_size;

  arena_reset();
  proxy_log(LOG_INFO, S("headers: on request headers"));
  proxy_add_header_map_value(MAP_REQUEST_HEADERS, S("x-wasm"), S("c"));
  if (proxy_get_header_map_value(MAP_REQUEST_HEADERS, S("x-replace"), &value,
                                 &value_size) == STATUS_OK) {
    proxy_replace_header_map_value(MAP_REQUEST_HEADERS, S("x-replace"),
                                   S("replaced"));
  }
  proxy_remove_header_map_value(MAP_REQUEST_HEADERS, S("x-remove"));
  return ACTION_CONTINUE;
}

EXPORT(proxy_on_response_headers)
u32 proxy_on_response_headers(u32 context_id, u32 num_headers, u32 end_of_stream) {
  arena_reset();
  proxy_log(LOG_INFO, S("headers: on response headers"));
  proxy_add_header_map_value(MAP_RESPONSE_HEADERS, S("x-wasm-response"), S("yes"));
  return ACTION_CONTINUE;
}
