// The pcap store: packet reports (RFC 7133 frame sections) of each exporter
// written into rotated pcap files, DIR/pcap/EXPORTER/packets-TIME.pcap,
// finalized atomically like the flow files (RotatingWriter) and under the
// same retention limits (per exporter). Nanosecond timestamps, link type
// Ethernet, each frame with its original length. Writing happens on its own
// thread behind a bounded queue: a full queue drops packets and counts
// them, never blocks receiving.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ipfix_decoder.h"
#include "output.h"
#include "writer_thread.h"

namespace bpfix {

class PcapStore {
public:
    struct Options {
        std::string dir;  // the collector's output directory; files go below DIR/pcap
        uint64_t interval_s = 300;
        uint64_t max_bytes = 0;
        uint64_t keep_seconds = 0;
        uint64_t keep_bytes = 0;
    };
    PcapStore(Options opt, uint64_t max_queued_bytes);
    ~PcapStore();

    // From a receiving thread: one packet report of `exporter` (its address
    // as text). A packet without a time gets the time it arrived.
    bool push(const std::string& exporter, const DecodedPacket& p);
    // Finishes every open file (SIGHUP); under `limits` from the next ones
    // when given (a reload).
    void rotate_now(std::optional<RotationLimits> limits = std::nullopt);
    void stop() { worker_.stop(); }

    uint64_t packets_written() const;
    uint64_t packets_dropped() const;
    uint64_t files_finished() const;

    // The directory of one exporter's files: DIR/pcap/NAME, NAME its address
    // with anything but [0-9A-Za-z.:_-] replaced.
    static std::string dir_name(const std::string& exporter);
    static std::string exporter_dir(const std::string& dir, const std::string& exporter) {
        return dir + "/pcap/" + dir_name(exporter);
    }

private:
    struct Item {
        std::string exporter;
        std::string records;  // pcap records back to back
        uint64_t packets = 0;
    };
    void write_batch(std::deque<Item>& batch, bool rotate, bool stop);
    RotatingWriter& writer(const std::string& exporter);

    Options opt_;
    std::map<std::string, std::unique_ptr<RotatingWriter>> writers_;  // writer thread only
    mutable std::mutex mu_;
    uint64_t written_ = 0, dropped_ = 0, finished_ = 0;
    WriterThread<Item> worker_;  // last: its thread starts at once
};

}  // namespace bpfix
