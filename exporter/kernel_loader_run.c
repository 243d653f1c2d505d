// C, because libbpf's skel_internal.h (the light skeletons' runtime) is C:
// runs a loader program that libbpf's gen_loader wrote (kernel_loader.h).
#include <errno.h>
#include <bpf/skel_internal.h>

#include "kernel_loader_run.h"

int bpfix_run_loader(void* ctx, const void* data, uint32_t data_sz, const void* insns, uint32_t insns_sz,
                     const char** errstr) {
    struct bpf_load_and_run_opts opts = {0};
    opts.ctx = (struct bpf_loader_ctx*)ctx;
    opts.data = data;
    opts.data_sz = data_sz;
    opts.insns = insns;
    opts.insns_sz = insns_sz;
    int err = bpf_load_and_run(&opts);
    *errstr = opts.errstr;
    return err;
}
