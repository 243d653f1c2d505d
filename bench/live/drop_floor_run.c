/* Loads and attaches bpf/drop_floor.bpf.o (a kfree_skb tracer that only
 * counts) for the live benchmark's "dropfloor" configuration; prints
 * "ready", and at SIGTERM or SIGINT "drops N" (all CPUs) and exits.
 *   drop_floor_run OBJ
 * Build: cc -O2 -o drop_floor_run drop_floor_run.c -lbpf */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t done;

static void on_signal(int sig)
{
    (void)sig;
    done = 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: drop_floor_run OBJ\n");
        return 2;
    }
    struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
    if (!obj || libbpf_get_error(obj) || bpf_object__load(obj)) {
        fprintf(stderr, "drop_floor_run: cannot load %s\n", argv[1]);
        return 1;
    }
    struct bpf_program *prog = bpf_object__find_program_by_name(obj, "count_drop");
    struct bpf_link *link = prog ? bpf_program__attach(prog) : NULL;
    if (!link || libbpf_get_error(link)) {
        fprintf(stderr, "drop_floor_run: cannot attach count_drop\n");
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
    struct bpf_map *map = bpf_object__find_map_by_name(obj, "floor_drops");
    if (per_cpu && map && bpf_map_lookup_elem(bpf_map__fd(map), &key, per_cpu) == 0) {
        for (int i = 0; i < ncpu; i++)
            sum += per_cpu[i];
    }
    printf("drops %llu\n", (unsigned long long)sum);
    fflush(stdout);
    bpf_link__destroy(link);
    bpf_object__close(obj);
    return 0;
}
