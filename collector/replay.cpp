#include "replay.h"

#include <unistd.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "collector_url.h"
#include "info_model.h"
#include "ipfix_decoder.h"
#include "output.h"
#include "pcap_query.h"
#include "transport.h"

namespace bpfix {

namespace {

// A message exported in [from, to) may sit in a file started this much
// before `from` (files are cut by the collector's clock, export times come
// from the exporters').
constexpr int64_t kSlackNs = 300'000'000'000LL;

uint32_t be32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
           p[3];
}

void put16(std::vector<uint8_t>& v, size_t at, uint16_t x) {
    v[at] = static_cast<uint8_t>(x >> 8);
    v[at + 1] = static_cast<uint8_t>(x);
}

// The message with only its template and options template sets (ids 2
// and 3), or an empty vector when it has none.
std::vector<uint8_t> template_sets_only(std::span<const uint8_t> msg) {
    std::vector<uint8_t> out(msg.begin(), msg.begin() + 16);
    size_t off = 16;
    while (off + 4 <= msg.size()) {
        uint16_t id = static_cast<uint16_t>(msg[off] << 8 | msg[off + 1]);
        uint16_t len = static_cast<uint16_t>(msg[off + 2] << 8 | msg[off + 3]);
        if (len < 4 || off + len > msg.size()) break;
        if (id == 2 || id == 3) out.insert(out.end(), msg.begin() + static_cast<long>(off), msg.begin() + static_cast<long>(off + len));
        off += len;
    }
    if (out.size() == 16) return {};
    put16(out, 2, static_cast<uint16_t>(out.size()));
    return out;
}

// Withdraws every template and options template of `domain` (RFC 7011
// section 8.1: template ids 2 and 3 with no fields), before a file whose
// templates reuse ids with other definitions.
std::vector<uint8_t> withdraw_all(uint32_t domain, uint32_t export_time) {
    std::vector<uint8_t> m(32, 0);
    put16(m, 0, 10);
    put16(m, 2, 32);
    for (int i = 0; i < 4; ++i) {
        m[4 + i] = static_cast<uint8_t>(export_time >> (24 - 8 * i));
        m[12 + i] = static_cast<uint8_t>(domain >> (24 - 8 * i));
    }
    put16(m, 16, 2);  // template set
    put16(m, 18, 8);
    put16(m, 20, 2);  // template id 2: all templates
    put16(m, 24, 3);  // options template set
    put16(m, 26, 8);
    put16(m, 28, 3);  // template id 3: all options templates
    return m;
}

}  // namespace

int run_replay(const ReplayOptions& opt) {
    if (opt.to_ns <= opt.from_ns) throw QueryError(400, "empty time range: 'to' must be after 'from'");
    if (opt.speed < 0) throw QueryError(400, "speed must be > 0 (or absent: as fast as possible)");
    CollectorUrl url = parse_collector_url(opt.url);
    if (url.kind == CollectorUrl::Kind::file) {
        throw QueryError(400, "replay sends to a collector: give tcp://HOST:PORT, sctp://HOST:PORT or udp://HOST:PORT");
    }
    if (access(opt.data_dir.c_str(), R_OK | X_OK) != 0) {
        throw QueryError(400, fmt::format("cannot read the data directory {}: {}", opt.data_dir, std::strerror(errno)));
    }
    auto files = rotated_files(opt.data_dir, "flows", "ipfix");
    if (files.empty()) {
        throw QueryError(404, fmt::format("no flows-*.ipfix files in {}: replay needs the collector's ipfix output "
                                          "format (--format ...,ipfix)",
                                          opt.data_dir));
    }
    asio::io_context io;
    // The loop runs in slices (run_for, poll): it must never run out of
    // work, or it stops and later writes never complete.
    auto work = asio::make_work_guard(io);
    std::vector<IpfixMessage> current_templates;  // the file's, for a reconnecting TCP transport
    TransportOptions topts;
    topts.mtu = opt.mtu;
    auto transport = make_transport(url, topts, io, [&]() -> const std::vector<IpfixMessage>& {
        return current_templates;
    });
    const bool udp = url.kind == CollectorUrl::Kind::udp;
    auto wait_ready = [&] {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!transport->ready()) {
            if (std::chrono::steady_clock::now() > deadline) {
                throw Error(fmt::format("collector {}: not reachable within 30 s", url.str()));
            }
            io.run_for(std::chrono::milliseconds(10));
        }
        io.poll();
    };
    std::map<uint32_t, uint32_t> seq;  // per domain (UDP; TCP numbers its own per connection)
    auto send = [&](std::vector<uint8_t> bytes, uint32_t records) {
        if (bytes.size() > transport->max_message_size()) {
            throw Error(fmt::format("a stored message of {} bytes does not fit {} (at most {}): replay over tcp:// "
                                    "or raise --mtu",
                                    bytes.size(), url.str(), transport->max_message_size()));
        }
        uint32_t domain = be32(bytes.data() + 12);
        if (udp) set_sequence_number(bytes, seq[domain]);
        seq[domain] += records;
        IpfixMessage m;
        m.bytes = std::move(bytes);
        m.data_records = records;
        wait_ready();
        transport->send(std::move(m));
    };

    uint64_t sent_messages = 0, sent_records = 0, files_used = 0;
    std::set<uint32_t> domains_seen;
    bool have_first = false;
    uint32_t first_export = 0;
    auto t_start = std::chrono::steady_clock::now();
    for (const RotatedFile& file : files_for_range(files, opt.from_ns, opt.to_ns, kSlackNs)) {
        std::ifstream in(file.path, std::ios::binary);
        std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        // Counts each message's data records (the templates say how long
        // records are); nothing is formatted.
        InfoModel model(opt.pen);
        IpfixDecoder decoder(model, [](const DecodedRecord&) {});
        decoder.set_count_only(true);
        current_templates.clear();
        bool file_used = false;
        size_t off = 0;
        while (off < data.size()) {
            std::string error;
            auto len = ipfix_message_length(std::span<const uint8_t>(data).subspan(off), error);
            if (!len) {
                if (!error.empty()) spdlog::warn("replay: {} at offset {}: {}; the rest is skipped", file.path, off, error);
                break;  // or a last message cut short (a file being written)
            }
            std::span<const uint8_t> msg(data.data() + off, *len);
            off += *len;
            uint64_t before = decoder.records();
            std::string problem = decoder.decode_message(msg);
            uint32_t records = static_cast<uint32_t>(decoder.records() - before);
            if (!problem.empty()) {
                spdlog::warn("replay: {}: a message the decoder refuses ({}); sent as stored", file.path, problem);
            }
            uint32_t export_time = be32(msg.data() + 4);
            uint32_t domain = be32(msg.data() + 12);
            int64_t t_ns = static_cast<int64_t>(export_time) * 1'000'000'000LL;
            bool in_range = t_ns >= opt.from_ns && t_ns < opt.to_ns;
            std::vector<uint8_t> templates = template_sets_only(msg);
            if (!templates.empty()) {
                IpfixMessage tm;
                tm.bytes = templates;
                tm.templates = true;
                current_templates.push_back(std::move(tm));
            }
            if (!in_range && templates.empty()) continue;
            if (!file_used) {
                file_used = true;
                ++files_used;
                // A new file numbers its templates anew: over TCP, take back
                // the previous file's first (UDP has no withdrawals).
                if (!udp && files_used > 1) {
                    for (uint32_t d : domains_seen) send(withdraw_all(d, export_time), 0);
                }
            }
            domains_seen.insert(domain);
            if (!in_range) {
                send(std::move(templates), 0);
                continue;
            }
            if (opt.speed > 0) {
                if (!have_first) {
                    have_first = true;
                    first_export = export_time;
                    t_start = std::chrono::steady_clock::now();
                }
                auto due = t_start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                         std::chrono::duration<double>((export_time - first_export) / opt.speed));
                while (std::chrono::steady_clock::now() < due) {
                    io.run_for(std::min<std::chrono::steady_clock::duration>(due - std::chrono::steady_clock::now(),
                                                                           std::chrono::milliseconds(50)));
                }
            }
            send(std::vector<uint8_t>(msg.begin(), msg.end()), records);
            ++sent_messages;
            sent_records += records;
            io.poll();
        }
    }
    bool delivered = transport->finish(io, std::chrono::seconds(10));
    std::fprintf(stderr,
                 "bpfix-collector: replay: files=%llu messages=%llu records=%llu to %s not_sent_records=%llu\n",
                 static_cast<unsigned long long>(files_used), static_cast<unsigned long long>(sent_messages),
                 static_cast<unsigned long long>(sent_records), url.str().c_str(),
                 static_cast<unsigned long long>(transport->records_not_sent()));
    return delivered && transport->records_not_sent() == 0 ? 0 : 1;
}

}  // namespace bpfix
