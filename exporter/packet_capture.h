// The packet capture agent's kernel side: TC programs (bpf/packet_capture
// .bpf.c) that copy the packets matching [[capture.filter]] into a ring
// buffer, attached only while capture is on; the packets read back from it,
// with the VLAN tag the NIC took off put back, the pcap-filter expression
// applied, and UNIX timestamps.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "exporter_config.h"
#include "interface_selector.h"
#include "pcap_expression.h"
#include "tc_attach.h"

struct packet_capture;
struct ring_buffer;

namespace bpfix {

struct CapturedPacket {
    uint64_t ts_ns = 0;  // UNIX time
    uint32_t ifindex = 0;
    uint8_t direction = 0;  // BPFIX_DIR_*
    uint32_t orig_len = 0;  // the frame's length (with its VLAN tag)
    std::span<const uint8_t> data;  // the first bytes of the frame, up to the snap length
};

struct CaptureCounters {
    uint64_t seen = 0;       // packets the capture programs ran on
    uint64_t filtered = 0;   // refused by the [[capture.filter]] rules
    uint64_t skipped = 0;    // past first_packets of their flow, or not the 1 in N
    uint64_t captured = 0;   // copied to the ring buffer
    uint64_t lost = 0;       // matched, but the ring buffer was full
    uint64_t expression_rejected = 0;  // read back, refused by the pcap-filter expression
    uint64_t delivered = 0;  // handed on
};

// Checks a [capture] section: rules, expression, listen address and allow
// list. Throws bpfix::Error naming the key.
void check_capture_config(const CaptureConfig& cfg);

class PacketCapture {
public:
    using Sink = std::function<void(const CapturedPacket&)>;
    // Loads the capture programs (not attached yet). Throws bpfix::Error.
    PacketCapture(const CaptureConfig& cfg, AttachMode mode, Sink sink);
    ~PacketCapture();
    PacketCapture(const PacketCapture&) = delete;
    PacketCapture& operator=(const PacketCapture&) = delete;

    // Turns capture on (attaches to the chosen ones among the `metered`
    // interfaces) or off (detaches everywhere).
    void set_active(bool on, const std::map<int, std::string>& metered);
    bool active() const { return active_; }
    // While on, follows interfaces that came or went.
    void sync(const std::map<int, std::string>& metered);
    std::vector<int> attached_interfaces() const { return tc_->attached_interfaces(); }

    // Hands every packet waiting in the ring to the sink (no waiting);
    // returns how many records were read. The reader is woken (epoll_fd)
    // only once a sixteenth of the ring waits: call poll() every
    // kPollInterval as well while active.
    size_t poll();
    static constexpr std::chrono::milliseconds kPollInterval{10};
    // Readable when packets wait (for an event loop).
    int epoll_fd() const;
    CaptureCounters counters() const;
    // The program of one direction (BPFIX_DIR_*), to run it under
    // BPF_PROG_TEST_RUN in tests.
    int program_fd(uint8_t direction) const;

    // Removes capture filters a run that died left on `ifindex` (classic
    // tc; TCX links go with their process), whether or not this run
    // captures: left, they would copy packets into a ring nobody reads.
    static bool remove_leftover(int ifindex);

    // TC handle and priority of the capture filters: the priority runs them
    // before the flow meter's (KernelMeter::kTcPriority).
    static constexpr uint32_t kTcHandle = 0xb9f2;
    static constexpr uint32_t kTcPriority = 0xb9f0;

private:
    struct SkelDeleter {
        void operator()(packet_capture* s) const;
    };
    static int on_record(void* ctx, void* data, size_t size);
    static TcPrograms programs(int ingress_fd, int egress_fd);

    CaptureConfig cfg_;
    Sink sink_;
    std::unique_ptr<InterfaceSelector> select_;  // none: every metered interface
    PcapExpression expression_;
    std::unique_ptr<packet_capture, SkelDeleter> skel_;
    std::unique_ptr<TcAttacher> tc_;
    ring_buffer* rb_ = nullptr;
    bool active_ = false;
    int ncpu_ = 0;
    uint64_t clock_offset_ns_ = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC, per poll
    uint64_t expression_rejected_ = 0, delivered_ = 0;
    std::vector<uint8_t> frame_;  // a record with its VLAN tag put back
};

}  // namespace bpfix
