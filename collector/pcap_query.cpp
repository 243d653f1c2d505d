#include "pcap_query.h"

#include <dirent.h>
#include <unistd.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <vector>

#include "output.h"
#include "pcap_expression.h"
#include "pcap_format.h"
#include "pcap_store.h"

namespace bpfix {

namespace {

// Exporter and collector clocks differ, and a packet is written a little
// after it was seen: a file may hold packets this far outside its interval.
constexpr int64_t kSlackNs = 300'000'000'000LL;

std::vector<std::string> exporter_dirs(const std::string& data_dir) {
    std::vector<std::string> out;
    std::string root = data_dir + "/pcap";
    DIR* d = opendir(root.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        out.push_back(e->d_name);
    }
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

struct Packet {
    int64_t ts_ns;
    uint32_t orig_len;
    size_t offset, len;  // into the arena
};

uint32_t le32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

}  // namespace

int64_t parse_rfc3339(const std::string& text) {
    static const std::regex re(
        R"((\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2})))");
    std::smatch m;
    if (!std::regex_match(text, m, re)) {
        throw QueryError(400, fmt::format("'{}' is not an RFC 3339 time such as 2026-12-01T04:30:00Z", text));
    }
    struct tm tm {};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    tm.tm_hour = std::stoi(m[4]);
    tm.tm_min = std::stoi(m[5]);
    tm.tm_sec = std::stoi(m[6]);
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        throw QueryError(400, fmt::format("'{}' is not a valid date and time", text));
    }
    int64_t ns = static_cast<int64_t>(timegm(&tm)) * 1'000'000'000LL;
    if (m[7].matched) {
        std::string frac = m[7].str();
        frac.resize(9, '0');
        ns += std::stoll(frac);
    }
    if (m[9].matched) {
        int64_t off = (std::stoll(m[10]) * 60 + std::stoll(m[11])) * 60 * 1'000'000'000LL;
        ns += m[9] == "+" ? -off : off;
    }
    return ns;
}

uint64_t write_pcap_range(const std::string& data_dir, const PcapQuery& q,
                          const std::function<void(std::string_view)>& out) {
    if (q.to_ns <= q.from_ns) {
        throw QueryError(400, "empty time range: 'to' must be after 'from'");
    }
    std::unique_ptr<PcapExpression> filter;
    try {
        filter = std::make_unique<PcapExpression>(q.filter, 65535);
    } catch (const Error& e) {
        throw QueryError(400, fmt::format("filter: {}", e.what()));
    }
    std::vector<std::string> dirs = exporter_dirs(data_dir);
    if (!q.exporter.empty()) {
        std::string want = PcapStore::dir_name(q.exporter);
        if (std::find(dirs.begin(), dirs.end(), want) == dirs.end()) {
            throw QueryError(404, fmt::format("no packets stored for exporter '{}'", q.exporter),
                             fmt::format("in {}; exporters with packets: {}", data_dir,
                                         dirs.empty() ? std::string("none") : fmt::format("{}", fmt::join(dirs, ", "))));
        }
        dirs = {want};
    }
    std::string arena;  // the matching frames, back to back
    std::vector<Packet> packets;
    for (const std::string& name : dirs) {
        for (const RotatedFile& file :
             files_for_range(rotated_files(data_dir + "/pcap/" + name, "packets", "pcap"), q.from_ns, q.to_ns, kSlackNs)) {
            // Read record by record: memory holds the matching packets only,
            // never a whole file.
            std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(file.path.c_str(), "rb"), &std::fclose);
            if (!in) continue;  // removed by retention meanwhile
            uint8_t head[kPcapGlobalHeaderSize];
            if (std::fread(head, 1, sizeof head, in.get()) != sizeof head) continue;
            uint32_t magic = le32(head);
            if (magic != kPcapMagicNano && magic != kPcapMagicMicro) {
                throw QueryError(500, "a file of the pcap store is not a pcap file",
                                 fmt::format("{}: magic {:#x}", file.path, magic));
            }
            const int64_t scale = magic == kPcapMagicNano ? 1 : 1000;
            std::vector<uint8_t> frame;
            uint8_t rec[kPcapRecordHeaderSize];
            while (std::fread(rec, 1, sizeof rec, in.get()) == sizeof rec) {
                uint32_t sec = le32(rec), frac = le32(rec + 4), incl = le32(rec + 8), orig = le32(rec + 12);
                if (incl > 262144) break;  // not a record of ours: the file is damaged from here on
                frame.resize(incl);
                if (std::fread(frame.data(), 1, incl, in.get()) != incl) break;  // the record being written
                int64_t ts = static_cast<int64_t>(sec) * 1'000'000'000LL + static_cast<int64_t>(frac) * scale;
                if (ts < q.from_ns || ts >= q.to_ns) continue;
                if (!filter->matches(std::span<const uint8_t>(frame.data(), incl), orig)) continue;
                // what this transfer holds: the frames and their index
                if (arena.size() + incl + (packets.size() + 1) * sizeof(Packet) > q.max_bytes) {
                    throw QueryError(413, fmt::format("more than {} MiB of packets match; narrow the time range, "
                                                      "the exporter or the filter",
                                                      q.max_bytes >> 20));
                }
                packets.push_back({ts, orig, arena.size(), incl});
                arena.append(reinterpret_cast<const char*>(frame.data()), incl);
            }
        }
    }
    std::stable_sort(packets.begin(), packets.end(), [](const Packet& a, const Packet& b) { return a.ts_ns < b.ts_ns; });
    std::string chunk = pcap_global_header(65535, q.nanoseconds);
    for (const Packet& pk : packets) {
        append_pcap_record(chunk, static_cast<uint64_t>(pk.ts_ns), q.nanoseconds, pk.orig_len,
                           std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(arena.data()) + pk.offset,
                                                    pk.len));
        if (chunk.size() >= (1u << 20)) {
            out(chunk);
            chunk.clear();
        }
    }
    out(chunk);
    return packets.size();
}

int write_pcap_file(const std::string& data_dir, const PcapQuery& q, const std::string& path) {
    uint64_t n = 0;
    if (path == "-") {
        n = write_pcap_range(data_dir, q, [](std::string_view chunk) {
            if (std::fwrite(chunk.data(), 1, chunk.size(), stdout) != chunk.size()) {
                throw Error(fmt::format("cannot write to stdout: {}", std::strerror(errno)));
            }
        });
        if (std::fflush(stdout) != 0) throw Error(fmt::format("cannot write to stdout: {}", std::strerror(errno)));
    } else {
        std::string tmp = path + ".partial";
        FILE* f = std::fopen(tmp.c_str(), "wb");
        if (!f) throw Error(fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
        try {
            n = write_pcap_range(data_dir, q, [&](std::string_view chunk) {
                if (std::fwrite(chunk.data(), 1, chunk.size(), f) != chunk.size()) {
                    throw Error(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
                }
            });
            if (std::fflush(f) != 0 || fsync(fileno(f)) != 0) {
                throw Error(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
            }
        } catch (...) {
            std::fclose(f);
            std::remove(tmp.c_str());
            throw;
        }
        std::fclose(f);
        if (std::rename(tmp.c_str(), path.c_str()) != 0) {
            std::remove(tmp.c_str());
            throw Error(fmt::format("cannot rename {} to {}: {}", tmp, path, std::strerror(errno)));
        }
    }
    std::fprintf(stderr, "bpfix-collector: pcap: %llu packets\n", static_cast<unsigned long long>(n));
    return 0;
}

}  // namespace bpfix
