// Map-type comparison for the live datapath (issue: choose the flow maps by
// measurement). The same flow meter program with five kinds of flow state,
// timed by the kernel itself (BPF_PROG_TEST_RUN, one packet per run, flows
// interleaved), on one CPU and on every CPU at once hitting the same flows:
//   bpfix       per-CPU array cache in front of a per-CPU hash (the datapath)
//   percpu-hash per-CPU hash only ([live] cache_slots = 0)
//   atomic      one hash shared by all CPUs, atomic adds
//   spinlock    one hash shared by all CPUs, bpf_spin_lock per flow
//   plain       one hash shared by all CPUs, plain adds (loses counts)
// and the count-only floor program as the reference for the run overhead.
// Prints ns per packet and the packets each design counted of those sent.
//   bpfix_map_bench [--flows N,N] [--rounds R] [--repeat K]   (root)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bpfix_abi.h"
#include "flow_meter.skel.h"
#include "flow_meter_atomic.skel.h"
#include "flow_meter_plain.skel.h"
#include "flow_meter_spinlock.skel.h"
#include "tc_floor.skel.h"

namespace {

// A loaded design: its ingress program, and how many packets its maps hold.
struct Design {
    std::string name;
    int prog_fd = -1;
    std::function<uint64_t()> counted;
    std::shared_ptr<void> owner;
};

int ncpu() { return libbpf_num_possible_cpus(); }

uint64_t sum_percpu_hash(int fd) {
    std::vector<bpfix_flow_stats> v(static_cast<size_t>(ncpu()));
    bpfix_flow_key k{}, next{};
    bpfix_flow_key* prev = nullptr;
    uint64_t n = 0;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, v.data()) == 0) {
            for (const auto& s : v) n += s.packets;
        }
        k = next;
        prev = &k;
    }
    return n;
}

uint64_t sum_cache(int fd, uint32_t slots) {
    std::vector<bpfix_flow_slot> v(static_cast<size_t>(ncpu()));
    uint64_t n = 0;
    for (uint32_t i = 0; i < slots; ++i) {
        if (bpf_map_lookup_elem(fd, &i, v.data()) == 0) {
            for (const auto& s : v) n += s.stats.packets;
        }
    }
    return n;
}

// Layout of the shared variants' value (bpf/flow_meter.bpf.c).
struct SharedStats {
    uint32_t lock, pad;
    uint64_t packets, bytes, first_ns, last_ns, tcp_flags;
};

uint64_t sum_shared_hash(int fd) {
    SharedStats v{};
    bpfix_flow_key k{}, next{};
    bpfix_flow_key* prev = nullptr;
    uint64_t n = 0;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, &v) == 0) n += v.packets;
        k = next;
        prev = &k;
    }
    return n;
}

Design load_meter(uint32_t cache_slots) {
    flow_meter* s = flow_meter__open();
    if (!s) throw std::runtime_error("cannot open flow_meter");
    for (bpf_map* m : {s->maps.cache_0, s->maps.cache_1}) bpf_map__set_max_entries(m, cache_slots ? cache_slots : 1);
    s->rodata->cache_enabled = cache_slots != 0;
    s->rodata->cache_mask = cache_slots ? cache_slots - 1 : 0;
    if (flow_meter__load(s)) throw std::runtime_error("cannot load flow_meter");
    std::shared_ptr<void> owner(s, [](void* p) { flow_meter__destroy(static_cast<flow_meter*>(p)); });
    int flows = bpf_map__fd(s->maps.flows_0), cache = bpf_map__fd(s->maps.cache_0);
    uint32_t slots = cache_slots ? cache_slots : 1;
    return {cache_slots ? "bpfix (per-CPU array cache + per-CPU hash)" : "per-CPU hash", bpf_program__fd(s->progs.meter_ingress),
            [=] { return sum_percpu_hash(flows) + sum_cache(cache, slots); }, owner};
}

template <typename Skel, typename Open, typename Load, typename Destroy>
Design load_shared(const char* name, Open open, Load load, Destroy destroy) {
    Skel* s = open();
    if (!s || load(s)) throw std::runtime_error(std::string("cannot load ") + name);
    std::shared_ptr<void> owner(s, [destroy](void* p) { destroy(static_cast<Skel*>(p)); });
    int fd = bpf_map__fd(s->maps.shared_flows);
    return {name, bpf_program__fd(s->progs.meter_ingress), [fd] { return sum_shared_hash(fd); }, owner};
}

Design load_floor() {
    tc_floor* s = tc_floor__open_and_load();
    if (!s) throw std::runtime_error("cannot load tc_floor");
    std::shared_ptr<void> owner(s, [](void* p) { tc_floor__destroy(static_cast<tc_floor*>(p)); });
    int fd = bpf_map__fd(s->maps.floor_packets);
    return {"floor (count-only program)", bpf_program__fd(s->progs.count_only),
            [fd] {
                std::vector<uint64_t> v(static_cast<size_t>(ncpu()));
                uint32_t zero = 0;
                uint64_t n = 0;
                if (bpf_map_lookup_elem(fd, &zero, v.data()) == 0) {
                    for (auto x : v) n += x;
                }
                return n;
            },
            owner};
}

// 60-byte Ethernet + IPv4 + UDP frames, one per flow (source address and
// ports vary).
std::vector<std::vector<uint8_t>> frames(uint32_t flows) {
    std::vector<std::vector<uint8_t>> out;
    for (uint32_t i = 0; i < flows; ++i) {
        std::vector<uint8_t> f(60, 0);
        std::memset(f.data(), 0x02, 12);
        f[12] = 0x08;
        uint8_t* ip = f.data() + 14;
        ip[0] = 0x45;
        ip[3] = 46;
        ip[8] = 64;
        ip[9] = 17;
        ip[12] = 10;
        ip[13] = static_cast<uint8_t>(i >> 16);
        ip[14] = static_cast<uint8_t>(i >> 8);
        ip[15] = static_cast<uint8_t>(i);
        ip[16] = 192, ip[17] = 0, ip[18] = 2, ip[19] = 1;
        uint8_t* udp = ip + 20;
        udp[0] = static_cast<uint8_t>(0x80 | (i & 0x3f)), udp[1] = static_cast<uint8_t>(i * 7);
        udp[2] = 0x13, udp[3] = 0x89, udp[5] = 26;
        out.push_back(std::move(f));
    }
    return out;
}

struct Result {
    double ns_per_packet;
    uint64_t sent, counted;
};

// Every thread (one per CPU in `cpus`) runs the flows in the same order,
// `rounds` times, `repeat` packets per run call.
Result run(const Design& d, const std::vector<std::vector<uint8_t>>& fr, int threads, int rounds, int repeat) {
    uint64_t before = d.counted();
    std::vector<uint64_t> ns(static_cast<size_t>(threads)), runs(static_cast<size_t>(threads));
    std::atomic<int> ready{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(t % ncpu(), &set);
            pthread_setaffinity_np(pthread_self(), sizeof set, &set);
            ready.fetch_add(1);
            while (ready.load() < threads) {
            }
            for (int r = 0; r < rounds; ++r) {
                for (const auto& f : fr) {
                    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f.data(), .data_size_in = static_cast<__u32>(f.size()),
                                .repeat = repeat);
                    if (bpf_prog_test_run_opts(d.prog_fd, &o) != 0) {
                        perror("BPF_PROG_TEST_RUN");
                        std::exit(1);
                    }
                    ns[static_cast<size_t>(t)] += static_cast<uint64_t>(o.duration) * static_cast<uint64_t>(repeat);
                    runs[static_cast<size_t>(t)] += static_cast<uint64_t>(repeat);
                }
            }
        });
    }
    for (auto& t : ts) t.join();
    uint64_t total_ns = 0, total_runs = 0;
    for (int t = 0; t < threads; ++t) {
        total_ns += ns[static_cast<size_t>(t)];
        total_runs += runs[static_cast<size_t>(t)];
    }
    return {static_cast<double>(total_ns) / static_cast<double>(total_runs), total_runs, d.counted() - before};
}

std::vector<uint32_t> parse_list(const char* s) {
    std::vector<uint32_t> out;
    for (const char* p = s; *p;) {
        out.push_back(static_cast<uint32_t>(std::strtoul(p, const_cast<char**>(&p), 10)));
        if (*p == ',') ++p;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<uint32_t> flow_counts{100, 10000};
    int rounds = 0, repeat = 1, trials = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--flows") flow_counts = parse_list(argv[i + 1]);
        else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
        else if (a == "--repeat") repeat = std::atoi(argv[i + 1]);
        else if (a == "--trials") trials = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: %s [--flows N,N] [--rounds R] [--repeat K] [--trials T]\n", argv[0]);
            return 2;
        }
    }
    if (geteuid() != 0) {
        std::fprintf(stderr, "bpfix_map_bench: needs root (CAP_BPF) to load BPF programs\n");
        return 2;
    }
    libbpf_set_print([](enum libbpf_print_level l, const char* f, va_list ap) {
        return l == LIBBPF_WARN ? std::vfprintf(stderr, f, ap) : 0;
    });
    int cpus = ncpu();
    std::printf("Flow-state designs timed by BPF_PROG_TEST_RUN: 60-byte UDP frames, flows interleaved, %d packet(s) "
                "per run call; ns per packet (the floor is the run call's own overhead), median of %d trials after an untimed pass that inserts every flow; kernel counts checked against packets sent in the trials.\n\n",
                repeat, trials);
    std::printf("| design | flows | CPUs | ns/packet | minus floor | counted / sent |\n|---|---|---|---|---|---|\n");
    for (uint32_t flows : flow_counts) {
        auto fr = frames(flows);
        int r = rounds ? rounds : std::max(1, static_cast<int>(30000 / flows));
        for (int threads : {1, cpus}) {
            if (threads == 1 && cpus == 1) continue;
            double floor_ns = 0;
            for (int k = 0; k < 5; ++k) {
                Design d;
                switch (k) {
                case 0: d = load_floor(); break;
                case 1: d = load_meter(4096); break;
                case 2: d = load_meter(0); break;
                case 3:
                    d = load_shared<flow_meter_atomic>("shared hash, atomic adds", flow_meter_atomic__open,
                                                       flow_meter_atomic__load, flow_meter_atomic__destroy);
                    break;
                default:
                    d = load_shared<flow_meter_spinlock>("shared hash, bpf_spin_lock", flow_meter_spinlock__open,
                                                         flow_meter_spinlock__load, flow_meter_spinlock__destroy);
                }
                run(d, fr, threads, 1, repeat);  // warm-up: every flow inserted, untimed
                std::vector<Result> rs;
                for (int t = 0; t < trials; ++t) rs.push_back(run(d, fr, threads, r, repeat));
                std::sort(rs.begin(), rs.end(),
                          [](const Result& a, const Result& b) { return a.ns_per_packet < b.ns_per_packet; });
                const Result& m = rs[rs.size() / 2];
                uint64_t sent = 0, counted = 0;
                for (const auto& x : rs) sent += x.sent, counted += x.counted;
                if (k == 0) floor_ns = m.ns_per_packet;
                std::printf("| %s | %u | %d | %.1f | %s | %llu / %llu%s |\n", d.name.c_str(), flows, threads,
                            m.ns_per_packet, k == 0 ? "–" : std::to_string(static_cast<int>(m.ns_per_packet - floor_ns + 0.5)).c_str(),
                            static_cast<unsigned long long>(counted), static_cast<unsigned long long>(sent),
                            counted == sent ? "" : " (LOST)");
            }
            // Plain adds on a shared hash: the cheapest shared design, and
            // why it is not an option (two CPUs on one flow lose counts).
            if (threads > 1) {
                Design d = load_shared<flow_meter_plain>("shared hash, plain adds", flow_meter_plain__open,
                                                         flow_meter_plain__load, flow_meter_plain__destroy);
                run(d, fr, threads, 1, repeat);
                Result m = run(d, fr, threads, r, repeat);
                std::printf("| %s | %u | %d | %.1f | %d | %llu / %llu%s |\n", d.name.c_str(), flows, threads,
                            m.ns_per_packet, static_cast<int>(m.ns_per_packet - floor_ns + 0.5),
                            static_cast<unsigned long long>(m.counted), static_cast<unsigned long long>(m.sent),
                            m.counted == m.sent ? "" : " (LOST)");
            }
        }
    }
    return 0;
}
