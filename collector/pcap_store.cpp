#include "pcap_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "error.h"
#include "pcap_format.h"

namespace bpfix {

namespace {

uint64_t unix_ns_now() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

int64_t unix_s_now() { return static_cast<int64_t>(unix_ns_now() / 1'000'000'000ULL); }

}  // namespace

std::string PcapStore::dir_name(const std::string& exporter) {
    std::string name = exporter.empty() ? "unknown" : exporter;
    for (char& c : name) {
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
                  c == ':' || c == '_' || c == '-';
        if (!ok) c = '_';
    }
    return name;
}

namespace {

// Crash recovery: the global header and the packet records up to the first
// one cut off.
uint64_t whole_records(const std::string& path, uint64_t size) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw Error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    uint8_t head[kPcapGlobalHeaderSize];
    if (size < sizeof head || std::fread(head, 1, sizeof head, f.get()) != sizeof head) return 0;
    uint32_t magic = static_cast<uint32_t>(head[0]) | static_cast<uint32_t>(head[1]) << 8 |
                     static_cast<uint32_t>(head[2]) << 16 | static_cast<uint32_t>(head[3]) << 24;
    if (magic != kPcapMagicNano && magic != kPcapMagicMicro) throw Error("not a pcap file");
    uint64_t off = sizeof head;
    uint8_t rec[kPcapRecordHeaderSize];
    while (off + sizeof rec <= size && std::fseek(f.get(), static_cast<long>(off), SEEK_SET) == 0 &&
           std::fread(rec, 1, sizeof rec, f.get()) == sizeof rec) {
        uint32_t incl = static_cast<uint32_t>(rec[8]) | static_cast<uint32_t>(rec[9]) << 8 |
                        static_cast<uint32_t>(rec[10]) << 16 | static_cast<uint32_t>(rec[11]) << 24;
        if (incl > 65535 || off + sizeof rec + incl > size) break;
        off += sizeof rec + incl;
    }
    return off;
}

}  // namespace

PcapStore::PcapStore(Options opt, uint64_t max_queued_bytes)
    : opt_(std::move(opt)),
      worker_(max_queued_bytes, [this](std::deque<Item>& batch, bool rotate, bool stop) {
          write_batch(batch, rotate, stop);
      }) {
    // Every exporter's files of a run that did not end, not only of those
    // that come back.
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(opt_.dir + "/pcap", ec)) {
        if (e.is_directory(ec)) recover_partials(e.path().string(), "packets", "pcap", whole_records);
    }
}

PcapStore::~PcapStore() { worker_.stop(); }

bool PcapStore::push(const std::string& exporter, const DecodedPacket& p) {
    std::string rec;
    append_pcap_record(rec, p.ts_ns ? p.ts_ns : unix_ns_now(), true, p.orig_len, p.frame);
    const uint64_t bytes = rec.size();
    bool ok = worker_.push_merged(
        bytes,
        [&](Item& last) {
            if (last.exporter != exporter || last.records.size() > (1u << 20)) return false;
            last.records += rec;
            ++last.packets;
            return true;
        },
        [&] { return Item{exporter, std::move(rec), 1}; });
    if (!ok) {
        std::lock_guard lock(mu_);
        ++dropped_;
    }
    return ok;
}

RotatingWriter& PcapStore::writer(const std::string& exporter) {
    auto it = writers_.find(exporter);
    if (it != writers_.end()) return *it->second;
    RotatingWriter::Options o;
    o.dir = exporter_dir(opt_.dir, exporter);
    std::error_code ec;
    std::filesystem::create_directories(o.dir, ec);
    if (ec) throw Error(fmt::format("cannot create the pcap directory {}: {}", o.dir, ec.message()));
    o.prefix = "packets";
    o.extension = "pcap";
    o.interval_s = opt_.interval_s;
    o.max_bytes = opt_.max_bytes;
    o.keep_seconds = opt_.keep_seconds;
    o.keep_bytes = opt_.keep_bytes;
    o.header = [] { return pcap_global_header(65535, true); };
    o.whole = whole_records;
    return *writers_.emplace(exporter, std::make_unique<RotatingWriter>(o)).first->second;
}

void PcapStore::write_batch(std::deque<Item>& batch, bool rotate, bool stop) {
    const int64_t now = unix_s_now();
    for (Item& item : batch) {
        try {
            writer(item.exporter).write(item.records, now);
            std::lock_guard lock(mu_);
            written_ += item.packets;
        } catch (const Error& e) {
            spdlog::error("pcap store: {}; {} packets of {} lost", e.what(), item.packets, item.exporter);
            std::lock_guard lock(mu_);
            dropped_ += item.packets;
        }
    }
    uint64_t finished = 0;
    for (auto& [exporter, w] : writers_) {
        try {
            if (rotate || stop) w->close();
            w->tick(now);  // time rotation without packets, retention once a second
        } catch (const Error& e) {
            spdlog::error("pcap store: {}", e.what());
        }
        finished += w->files_finished();
    }
    std::lock_guard lock(mu_);
    finished_ = finished;
}

uint64_t PcapStore::packets_written() const {
    std::lock_guard lock(mu_);
    return written_;
}

uint64_t PcapStore::packets_dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
}

uint64_t PcapStore::files_finished() const {
    std::lock_guard lock(mu_);
    return finished_;
}

void PcapStore::rotate_now(std::optional<RotationLimits> limits) {
    if (!limits) return worker_.rotate_now();
    worker_.rotate_now([this, l = *limits] {
        opt_.interval_s = l.interval_s;
        opt_.max_bytes = l.max_bytes;
        opt_.keep_seconds = l.keep_seconds;
        opt_.keep_bytes = l.keep_bytes;
        for (auto& [exporter, w] : writers_) w->set_limits(l);
    });
}

}  // namespace bpfix
