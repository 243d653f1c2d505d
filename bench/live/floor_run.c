/* Loads and attaches a count-only BPF program for the live benchmark's floor
 * configurations; prints "ready", and at SIGTERM or SIGINT "count N" (all
 * CPUs) and exits.
 *   floor_run drop OBJ      bpf/drop_floor.bpf.o: a kfree_skb tracer that only
 *                           counts ("dropfloor", the floor of any drop tracer)
 *   floor_run tcx OBJ IF    bpf/tc_floor.bpf.o on IF's ingress through a TCX
 *                           link ("tcxfloor", the floor of any TC meter on
 *                           kernels with TCX, which is how bpfix attaches there)
 * Build: cc -O2 -o floor_run floor_run.c -lbpf */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t done;

static void on_signal(int sig)
{
    (void)sig;
    done = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: floor_run drop OBJ | floor_run tcx OBJ IF\n");
    return 2;
}

int main(int argc, char **argv)
{
    int tcx = argc == 4 && strcmp(argv[1], "tcx") == 0;
    if (!tcx && !(argc == 3 && strcmp(argv[1], "drop") == 0))
        return usage();
    const char *prog_name = tcx ? "count_only" : "count_drop";
    const char *map_name = tcx ? "floor_packets" : "floor_drops";
    int ifindex = 0;
    if (tcx && (ifindex = (int)if_nametoindex(argv[3])) == 0) {
        fprintf(stderr, "floor_run: no interface %s\n", argv[3]);
        return 1;
    }
    struct bpf_object *obj = bpf_object__open_file(argv[2], NULL);
    struct bpf_program *prog = obj && !libbpf_get_error(obj)
                                   ? bpf_object__find_program_by_name(obj, prog_name) : NULL;
    if (!prog) {
        fprintf(stderr, "floor_run: no program %s in %s\n", prog_name, argv[2]);
        return 1;
    }
    if (bpf_object__load(obj)) {
        fprintf(stderr, "floor_run: cannot load %s\n", argv[2]);
        return 1;
    }
    /* TCX: a BPF link of attach type BPF_TCX_INGRESS (46, kernel 6.6), made
     * by number as bpfix does: Debian 12's libbpf and headers predate it. */
    struct bpf_link *link = NULL;
    int tcx_fd = tcx ? bpf_link_create(bpf_program__fd(prog), ifindex, (enum bpf_attach_type)46, NULL) : -1;
    if (!tcx)
        link = bpf_program__attach(prog);
    if (tcx ? tcx_fd < 0 : (!link || libbpf_get_error(link))) {
        fprintf(stderr, "floor_run: cannot attach %s: %s\n", prog_name, strerror(errno));
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("ready\n");
    fflush(stdout);
    while (!done)
        pause();
    int ncpu = libbpf_num_possible_cpus();
    uint64_t *per_cpu = calloc((size_t)ncpu, sizeof *per_cpu), sum = 0;
    uint32_t key = 0;
    struct bpf_map *map = bpf_object__find_map_by_name(obj, map_name);
    if (per_cpu && map && bpf_map_lookup_elem(bpf_map__fd(map), &key, per_cpu) == 0) {
        for (int i = 0; i < ncpu; i++)
            sum += per_cpu[i];
    }
    printf("count %llu\n", (unsigned long long)sum);
    fflush(stdout);
    if (tcx)
        close(tcx_fd);
    else
        bpf_link__destroy(link);
    bpf_object__close(obj);
    return 0;
}
