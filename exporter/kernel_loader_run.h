#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// skel_internal.h's bpf_load_and_run(): loads the loader program (a
// BPF_PROG_TYPE_SYSCALL program with its data in an array map), runs it on
// `ctx` (struct bpf_loader_ctx, then the map and program descriptors it
// fills), closes both. 0, or a negative errno and *errstr saying which step
// failed ("failed to load loader prog": the kernel cannot run loaders).
int bpfix_run_loader(void* ctx, const void* data, uint32_t data_sz, const void* insns, uint32_t insns_sz,
                     const char** errstr);

#ifdef __cplusplus
}
#endif
