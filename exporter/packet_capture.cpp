#include "packet_capture.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "allow_list.h"
#include "bpfix_abi.h"
#include "clock.h"
#include "error.h"
#include "filter_rules.h"
#include "packet_capture.skel.h"
#include "pcap_server.h"

namespace bpfix {

void check_capture_config(const CaptureConfig& cfg) {
    compile_filter(cfg.filters, "capture.filter");
    try {
        PcapExpression e(cfg.expression, cfg.snaplen);
    } catch (const Error& e) {
        throw Error(fmt::format("capture.expression (--capture-filter): {}", e.what()));
    }
    try {
        AllowList a(cfg.allow);
    } catch (const Error& e) {
        throw Error(fmt::format("capture.allow: {}", e.what()));
    }
    if (cfg.listen.empty()) return;  // packet reports only
    asio::ip::tcp::endpoint ep = capture_listen_endpoint(cfg.listen);
    if (!ep.address().is_loopback() && cfg.allow.empty()) {
        throw Error(fmt::format("capture.listen {}: packets would be offered beyond this host; set capture.allow "
                                "(--capture-allow) to the networks that may connect, or listen on 127.0.0.1",
                                cfg.listen));
    }
}

void PacketCapture::SkelDeleter::operator()(packet_capture* s) const { packet_capture__destroy(s); }

PacketCapture::PacketCapture(const CaptureConfig& cfg, AttachMode mode, Sink sink)
    : cfg_(cfg), sink_(std::move(sink)), expression_(cfg.expression, cfg.snaplen) {
    if (!cfg.interfaces.empty()) select_ = std::make_unique<InterfaceSelector>(cfg.interfaces, std::vector<std::string>{});
    CompiledFilter filter = compile_filter(cfg.filters, "capture.filter");
    route_libbpf_logs();
    ncpu_ = libbpf_num_possible_cpus();
    if (ncpu_ <= 0) throw Error("cannot count the possible CPUs (libbpf_num_possible_cpus)");
    skel_.reset(packet_capture__open());
    if (!skel_) throw Error(fmt::format("cannot open the eBPF capture programs: {}", std::strerror(errno)));
    skel_->rodata->snap_len = cfg.snaplen;
    skel_->rodata->first_packets = cfg.first_packets;
    skel_->rodata->sampling_interval = cfg.sampling;
    // A wake-up per packet cost the sending CPU more than the copy; batched,
    // the reader also polls every kPollInterval.
    skel_->rodata->wakeup_bytes = cfg.ring_bytes / 16;
    bpf_map__set_max_entries(skel_->maps.capture_ring, cfg.ring_bytes);
    bpf_map__set_max_entries(skel_->maps.flow_packets, cfg.first_packets ? cfg.flow_entries : 1);
    int err = packet_capture__load(skel_.get());
    if (err) {
        throw Error(fmt::format("cannot load the eBPF capture programs: {}", std::strerror(-err)));
    }
    install_filter(bpf_map__fd(skel_->maps.filter_rules), skel_->data ? skel_->data->filter_sets : nullptr,
                   skel_->bss ? &skel_->bss->filter_bank : nullptr, filter, "capture.filter");
    rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.capture_ring), &PacketCapture::on_record, this, nullptr);
    if (!rb_) throw Error(fmt::format("cannot map the capture ring buffer: {}", std::strerror(errno)));
    tc_ = std::make_unique<TcAttacher>(programs(bpf_program__fd(skel_->progs.capture_ingress),
                                                bpf_program__fd(skel_->progs.capture_egress)),
                                       mode);
}

TcPrograms PacketCapture::programs(int ingress_fd, int egress_fd) {
    return TcPrograms{"capture", ingress_fd, egress_fd, "capture_ingress", "capture_egress", kTcHandle, kTcPriority,
                      true};
}

bool PacketCapture::remove_leftover(int ifindex) {
    TcAttacher probe(programs(-1, -1), AttachMode::kTc);
    return probe.remove_leftover(ifindex);
}

PacketCapture::~PacketCapture() {
    tc_.reset();  // detach before the programs and the ring go
    if (rb_) ring_buffer__free(rb_);
}

void PacketCapture::set_active(bool on, const std::map<int, std::string>& metered) {
    if (on == active_) return;
    active_ = on;
    if (!on) {
        tc_->detach_all();
        poll();  // what is already in the ring still goes out
        spdlog::info("capture: off (capture programs detached)");
        return;
    }
    sync(metered);
    spdlog::info("capture: on for {} interface(s) (snap length {}{}{})", tc_->attached_interfaces().size(),
                 cfg_.snaplen, cfg_.expression.empty() ? "" : ", expression '" + cfg_.expression + "'",
                 cfg_.filters.empty() ? "" : fmt::format(", {} kernel filter rules", cfg_.filters.size()));
}

void PacketCapture::sync(const std::map<int, std::string>& metered) {
    if (!active_) return;
    std::map<int, std::string> wanted = select_ ? select_->select(metered) : metered;
    for (int idx : tc_->attached_interfaces()) {
        if (!wanted.count(idx)) tc_->detach(idx);
    }
    for (const auto& [idx, name] : wanted) {
        if (tc_->attached(idx)) continue;
        try {
            tc_->attach(idx, name);
        } catch (const Error& e) {
            spdlog::warn("capture: {}", e.what());
        }
    }
}

int PacketCapture::program_fd(uint8_t direction) const {
    return bpf_program__fd(direction == BPFIX_DIR_EGRESS ? skel_->progs.capture_egress : skel_->progs.capture_ingress);
}

int PacketCapture::epoll_fd() const { return ring_buffer__epoll_fd(rb_); }

size_t PacketCapture::poll() {
    clock_offset_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
    int n = ring_buffer__consume(rb_);
    return n > 0 ? static_cast<size_t>(n) : 0;
}

int PacketCapture::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<PacketCapture*>(ctx);
    if (size < sizeof(bpfix_capture_hdr)) return 0;
    bpfix_capture_hdr h;
    std::memcpy(&h, data, sizeof h);
    const uint8_t* bytes = static_cast<const uint8_t*>(data) + sizeof h;
    uint32_t cap = std::min<uint32_t>(h.cap_len, static_cast<uint32_t>(size - sizeof h));
    CapturedPacket p;
    p.ts_ns = h.ts_ns + self->clock_offset_ns_;
    p.ifindex = h.ifindex;
    p.direction = h.direction;
    p.orig_len = h.orig_len;
    p.data = std::span<const uint8_t>(bytes, cap);
    if (h.vlan_present && cap >= 12) {
        // The tag the NIC or the stack took off goes back after the MAC
        // addresses, as tcpdump shows it; the snap length still holds.
        auto& f = self->frame_;
        f.assign(bytes, bytes + 12);
        uint16_t tci = htons(h.vlan_tci);
        const auto* proto = reinterpret_cast<const uint8_t*>(&h.vlan_proto);  // network order already
        f.insert(f.end(), proto, proto + 2);
        f.insert(f.end(), reinterpret_cast<const uint8_t*>(&tci), reinterpret_cast<const uint8_t*>(&tci) + 2);
        f.insert(f.end(), bytes + 12, bytes + cap);
        if (f.size() > self->cfg_.snaplen) f.resize(self->cfg_.snaplen);
        p.orig_len += 4;
        p.data = std::span<const uint8_t>(f.data(), f.size());
    }
    if (!self->expression_.matches(p.data, p.orig_len)) {
        ++self->expression_rejected_;
        return 0;
    }
    ++self->delivered_;
    self->sink_(p);
    return 0;
}

CaptureCounters PacketCapture::counters() const {
    CaptureCounters out;
    std::vector<bpfix_counter> per_cpu(static_cast<size_t>(ncpu_));
    int fd = bpf_map__fd(skel_->maps.capture_counters);
    auto sum = [&](uint32_t idx) {
        uint64_t n = 0;
        if (bpf_map_lookup_elem(fd, &idx, per_cpu.data()) != 0) return n;
        for (const auto& c : per_cpu) n += c.packets;
        return n;
    };
    out.seen = sum(BPFIX_CAP_SEEN);
    out.filtered = sum(BPFIX_CAP_FILTERED);
    out.skipped = sum(BPFIX_CAP_SKIPPED);
    out.captured = sum(BPFIX_CAP_CAPTURED);
    out.lost = sum(BPFIX_CAP_LOST);
    out.expression_rejected = expression_rejected_;
    out.delivered = delivered_;
    return out;
}

}  // namespace bpfix
