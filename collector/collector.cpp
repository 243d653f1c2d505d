#include "collector.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <asio.hpp>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <memory>
#include <sstream>
#include <type_traits>

#include "allow_list.h"
#include "collector_url.h"
#include "error.h"
#include "info_model.h"
#include "log.h"
#include "ipfix_output.h"
#include "line_formats.h"
#include "listen_plan.h"
#include "http_server.h"
#include "output.h"
#include "pcap_api.h"
#include "pcap_store.h"
#include "prometheus.h"
#include "sctp.h"
#include "service_notify.h"
#include "session.h"
#include "socket_activation.h"

namespace bpfix {

namespace {

// IPv4 exporters reaching a dual-stack socket show up as ::ffff:a.b.c.d.
asio::ip::address plain(const asio::ip::address& a) { return plain_address(a); }

std::string endpoint_text(const asio::ip::address& addr, uint16_t port) {
    asio::ip::address a = plain(addr);
    return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), port) : fmt::format("{}:{}", a.to_string(), port);
}

// Kernel receive-buffer drops of the UDP socket bound to `port`, from
// /proc/net/udp and /proc/net/udp6 (last column).
uint64_t udp_kernel_drops(uint16_t port) {
    uint64_t drops = 0;
    for (const char* path : {"/proc/net/udp", "/proc/net/udp6"}) {
        std::ifstream in(path);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream ls(line);
            std::string slot, local;
            ls >> slot >> local;
            auto colon = local.rfind(':');
            if (colon == std::string::npos || std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
            std::string last, field;
            while (ls >> field) last = field;
            drops += std::stoull(last);
        }
    }
    return drops;
}

// How many exporter connections the descriptor limit holds: the soft
// limit is raised to the hard one, and kept apart from the connections
// are the HTTP clients and a reserve for output files, listeners and
// libraries, so that a crowd of connections never leaves rotation without
// a descriptor.
uint64_t connection_budget(const CollectorConfig& cfg) {
    constexpr uint64_t kReserve = 256;
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return cfg.max_connections;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    uint64_t others = kReserve + cfg.http_max_connections + cfg.pcap_max_requests;
    uint64_t fit = rl.rlim_cur > others ? rl.rlim_cur - others : 1;
    if (fit >= cfg.max_connections) return cfg.max_connections;
    spdlog::warn("the file descriptor limit ({}) holds {} exporter connections, not [limits] max_connections = {}: "
                 "connections beyond {} are refused and counted; raise LimitNOFILE (ulimit -n) to allow more",
                 static_cast<uint64_t>(rl.rlim_cur), fit, cfg.max_connections, fit);
    return fit;
}

// Everything the listeners share: the information model, the output, the
// sessions and their limits.
struct Hub {
    const CollectorConfig& cfg;
    InfoModel model;
    // The record formats configured (jsonl, csv, sqlite; each its own
    // writer thread), all fed the same JSON lines, and the ipfix output.
    struct LineOutput {
        std::string format;
        std::unique_ptr<OutputQueue> queue;
    };
    std::vector<LineOutput> outs;
    std::unique_ptr<IpfixOutput> ipfix;
    // Packet reports of every exporter, whatever the formats.
    std::unique_ptr<PcapStore> pcap;
    // Decode threads share the Hub: `mu` guards the allow list and the
    // connections per address; counters are atomic.
    std::mutex mu;
    uint64_t next_session_id = 0;
    // What sessions decoded, per exporter and domain, for the process's
    // life (a closed session's counts stay), and session-level counters.
    CounterTable counters;
    SessionCounters shared;
    std::atomic<uint64_t> udp_sessions_now{0}, connections_now{0};
    std::atomic<uint64_t> rejected_sessions{0};     // UDP sources over max_sessions
    std::atomic<uint64_t> rejected_connections{0};  // over max_connections or max_connections_per_address
    std::atomic<uint64_t> evicted_connections{0};   // closed for a new one: they had sent no message yet
    std::atomic<uint64_t> evicted_sessions{0};      // UDP sessions closed for a new one: no record delivered
    std::atomic<uint64_t> timed_out_connections{0};  // start, read or idle timeout
    std::atomic<uint64_t> accept_errors{0};          // accept() failed (EMFILE, ...): accepting paused
    std::map<asio::ip::address, uint64_t> connections_per_address;  // under mu
    // [limits] max_connections, or fewer when the descriptor limit cannot
    // hold them beside the files, sockets and HTTP clients.
    uint64_t max_connections = 0;

    RotatingWriter::Options file_options(const std::string& extension, bool compressible) const {
        RotatingWriter::Options o;
        o.dir = cfg.output_dir;
        o.prefix = "flows";
        o.extension = extension;
        o.interval_s = cfg.rotate_interval_s;
        o.max_bytes = cfg.rotate_size_bytes;
        o.keep_seconds = cfg.keep_seconds;
        o.keep_bytes = cfg.keep_bytes;
        if (compressible && cfg.compress == "zstd") o.zstd_level = cfg.compress_level;
        return o;
    }

    explicit Hub(const CollectorConfig& c)
        : cfg(c), model(c.pen), counters(c.max_exporter_series), max_connections(connection_budget(c)) {
        lock_output_dir();
        allow = AllowList(c.allow);
        for (const auto& f : c.formats) {
            if (f == "ipfix") {
                ipfix = std::make_unique<IpfixOutput>(file_options("ipfix", false), c.max_queued_bytes);
            } else {
                outs.push_back({f, std::make_unique<OutputQueue>(file_options(f, f != "sqlite"), c.max_queued_bytes,
                                                                 make_line_format(f))});
            }
        }
        pcap = std::make_unique<PcapStore>(PcapStore::Options{c.output_dir, c.rotate_interval_s, c.rotate_size_bytes,
                                                              c.keep_seconds, c.keep_bytes},
                                           c.max_queued_bytes);
        template_dir = c.output_dir + "/.templates";
        if (mkdir(template_dir.c_str(), 0755) != 0 && errno != EEXIST) {
            throw Error(fmt::format("cannot create {} (UDP templates kept across restarts): {}", template_dir,
                                    std::strerror(errno)));
        }
    }

    ~Hub() {
        if (dir_lock >= 0) ::close(dir_lock);
    }
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    // One collector per output directory: another one's open files would
    // look like a crashed run's to this one's recovery, and both would
    // rotate into the same names.
    int dir_lock = -1;
    void lock_output_dir() {
        struct stat st{};
        if (stat(cfg.output_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            throw Error(fmt::format("output directory {} does not exist; create it (mkdir -p) or choose another with "
                                    "--output-dir",
                                    cfg.output_dir));
        }
        std::string path = cfg.output_dir + "/.lock";
        dir_lock = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (dir_lock < 0) {
            throw Error(fmt::format("cannot create {}: {} (is --output-dir {} a writable directory?)", path,
                                    std::strerror(errno), cfg.output_dir));
        }
        if (flock(dir_lock, LOCK_EX | LOCK_NB) != 0) {
            throw Error(fmt::format("another bpfix-collector writes into {} (it holds {}); give each collector "
                                    "its own --output-dir",
                                    cfg.output_dir, path));
        }
    }

    // Records written by the record formats (each gets every record; the
    // first one's count) and packet reports by the pcap store, dropped by
    // any output, files finished by all.
    uint64_t written() const {
        return (outs.empty() ? 0 : outs.front().queue->records_written()) + pcap->packets_written();
    }
    uint64_t dropped() const {
        uint64_t n = (ipfix ? ipfix->records_dropped() : 0) + pcap->packets_dropped();
        for (const auto& o : outs) n += o.queue->records_dropped();
        return n;
    }
    uint64_t files() const {
        uint64_t n = (ipfix ? ipfix->files_finished() : 0) + pcap->files_finished();
        for (const auto& o : outs) n += o.queue->files_finished();
        return n;
    }
    // Finishes every open file; the next ones follow `limits` when given.
    void rotate_all(std::optional<RotationLimits> limits = std::nullopt) {
        for (auto& o : outs) o.queue->rotate_now(limits);
        if (ipfix) ipfix->rotate_now(limits);
        pcap->rotate_now(limits);
    }
    // A reload: sessions that start from now on are checked against it.
    void set_allow(const std::vector<std::string>& cidrs) {
        AllowList next(cidrs);
        std::lock_guard lock(mu);
        allow = std::move(next);
    }
    void stop_all() {
        for (auto& o : outs) o.queue->stop();
        if (ipfix) ipfix->stop();
        pcap->stop();
    }

    AllowList allow;
    std::atomic<uint64_t> refused_exporters{0};

    bool allowed(const asio::ip::address& addr) const { return allow.allows(addr); }

    // Whether `a` may export to us ([listen] allow); a refusal is logged
    // for the first 10 and counted.
    bool admit(const asio::ip::address& a, uint16_t port) {
        std::lock_guard lock(mu);
        if (allowed(a)) return true;
        if (refused_exporters++ < 10) {
            spdlog::warn("exporter {} is not in [listen] allow; its IPFIX is ignored", endpoint_text(a, port));
        }
        return false;
    }

    // A session for an admitted exporter. `worker_model`: the information
    // model of the decode thread the session lives on.
    std::unique_ptr<ExporterSession> new_session(const asio::ip::address& a, uint16_t port, InfoModel& worker_model) {
        auto s = std::make_unique<ExporterSession>(
            worker_model, plain(a).to_string(), endpoint_text(a, port),
            [this](std::string lines, uint64_t n) {
                for (size_t i = 0; i + 1 < outs.size(); ++i) {
                    outs[i].queue->push(lines, n);
                }
                if (!outs.empty()) outs.back().queue->push(std::move(lines), n);
            },
            counters, shared);
        s->set_max_templates(cfg.max_templates);
        s->set_max_domains(cfg.max_domains);
        if (outs.empty()) s->set_count_only();
        s->set_packet_sink([this, exporter = plain(a).to_string()](const DecodedPacket& p) { pcap->push(exporter, p); });
        if (ipfix) {
            uint64_t id;
            {
                std::lock_guard lock(mu);
                id = next_session_id++;
            }
            s->set_raw_sink([this, id](std::span<const uint8_t> m, uint64_t n) {
                ipfix->push(id, m, n);
            });
        }
        return s;
    }

    // Where a UDP session's templates are kept across restarts.
    std::string template_path(const asio::ip::address& a, uint16_t port) const {
        std::string addr = plain(a).to_string();
        std::replace(addr.begin(), addr.end(), ':', '_');
        return fmt::format("{}/udp-{}-{}.ipfix", template_dir, addr, port);
    }
    std::string template_dir;
    // Template files of the UDP sessions open now (under mu): never pruned.
    std::set<std::string> templates_in_use;
    std::atomic<uint64_t> template_files_removed{0};
    void template_file_used(const std::string& path, bool used) {
        std::lock_guard lock(mu);
        if (used) {
            templates_in_use.insert(path);
        } else {
            templates_in_use.erase(path);
        }
    }
    // .templates/ stays bounded: a file not used by an open session goes
    // once it is older than udp_template_lifetime (its templates would
    // have expired anyway), and beyond max_sessions files the oldest
    // unused ones go. Returns how many were removed.
    size_t prune_templates() {
        struct File {
            std::string path;
            int64_t mtime;
        };
        std::vector<File> files;
        DIR* d = opendir(template_dir.c_str());
        if (!d) return 0;
        while (dirent* e = readdir(d)) {
            std::string n = e->d_name;
            if (n.rfind("udp-", 0) != 0) continue;
            std::string path = template_dir + "/" + n;
            struct stat st{};
            if (stat(path.c_str(), &st) == 0) files.push_back({path, st.st_mtime});
        }
        closedir(d);
        std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.mtime < b.mtime; });
        const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        size_t left = files.size(), removed = 0;
        std::lock_guard lock(mu);
        for (const auto& f : files) {
            bool old = cfg.udp_template_lifetime_s > 0 && now - f.mtime > cfg.udp_template_lifetime_s;
            if ((!old && left <= cfg.max_sessions) || templates_in_use.count(f.path)) continue;
            if (unlink(f.path.c_str()) == 0) {
                ++removed;
                --left;
            }
        }
        template_files_removed += removed;
        return removed;
    }

    // Logs a malformed message: the first 10 of a session, then every
    // 1000th (all are counted).
    void log_problem(const ExporterSession& s, const std::string& problem) {
        uint64_t n = s.malformed();
        if (n <= 10 || n % 1000 == 0) {
            spdlog::warn("exporter {}: malformed IPFIX message ({} so far): {}", s.peer(), n, problem);
        }
    }
};

// A share of the decoding: one UDP socket per listener (each read on its
// own thread) and the TCP connections given to it (on its event loop), the
// information model of their sessions (libfixbuf's model is not
// thread-safe: templates add unknown elements to it, RFC 5610 records add
// theirs), and a lock held while its sessions decode, so that they share
// the model and the main thread (metrics, stats, expiry) can visit them.
struct Worker {
    size_t index;
    asio::io_context& io;
    InfoModel& model;
    std::mutex mu;
};

// One of a UDP listener's sockets (one per worker, on the same port with
// SO_REUSEPORT: the kernel hashes each exporter's address and port to one
// socket, so a session stays on one socket without hand-offs), the thread
// reading it and the UDP sessions the kernel hashes to it.
class UdpSocket {
public:
    // Owns `fd` (a bound UDP socket, blocking). `buffer`: its receive
    // buffer, bytes. `passed`: systemd's socket, which outlives this
    // process: at stop what is queued stays for the next run.
    UdpSocket(Worker& w, Hub& hub, int fd, size_t buffer, bool passed)
        : worker_(w),
          hub_(hub),
          fd_(fd),
          passed_(passed),
          nap_(std::min<std::chrono::microseconds>(kNap, std::chrono::microseconds(buffer / 1000))) {}
    ~UdpSocket() {
        stop();
        ::close(fd_);
    }
    UdpSocket(const UdpSocket&) = delete;
    UdpSocket& operator=(const UdpSocket&) = delete;
    // Starts reading, on a thread of its own.
    void start() {
        thread_ = std::thread([this] { run(); });
    }
    // Stops reading (within kStopCheck) and waits for the thread.
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    // Closes sessions silent for longer than `timeout` (their counts stay
    // in the Hub's table, their templates on disk for their return) and
    // forgets refused sources silent as long.
    void expire(std::chrono::steady_clock::time_point now, std::chrono::seconds timeout) {
        std::lock_guard lock(worker_.mu);
        for (auto it = sessions_.begin(); it != sessions_.end();) {
            if (now - it->second.last_seen < timeout) {
                ++it;
                continue;
            }
            if (it->second.session) {
                spdlog::info("UDP exporter {} silent for {} s: session closed", it->second.session->peer(),
                             timeout.count());
                --hub_.udp_sessions_now;
                hub_.template_file_used(hub_.template_path(it->first.first, it->first.second), false);
            }
            it = sessions_.erase(it);
        }
    }

    bool passed() const { return passed_; }
    // Bytes of datagrams waiting in the kernel.
    size_t pending() const {
        int n = 0;
        return ioctl(fd_, FIONREAD, &n) == 0 && n > 0 ? static_cast<size_t>(n) : 0;
    }

private:
    // Takes datagrams in batches: recvmmsg blocks until one is there and
    // returns up to kBatch that are (one system call for a burst). Once the
    // socket is empty it sleeps nap_ before reading again, so that the next
    // wake-up finds many datagrams rather than one: wake-ups were the
    // largest cost below a million records a second. The receive timeout
    // lets it see stop_.
    // Each datagram lands in a slot of kSlot bytes, packed together (slots
    // 64 KiB apart cost cache misses: 256 of them share a few cache sets);
    // the bytes of a larger one continue in its spill area (untouched, so
    // not resident, until a datagram needs it) and are joined before
    // decoding.
    void run() {
        timeval tv{0, static_cast<suseconds_t>(kStopCheck.count() * 1000)};
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        for (size_t i = 0; i < kBatch; ++i) {
            iov_[2 * i] = {slots_.get() + i * kSlot, kSlot};
            iov_[2 * i + 1] = {spill_.get() + i * kSpill, kSpill};
        }
        std::vector<uint8_t> joined;
        for (;;) {
            // Once stopping, it reads what is queued without waiting, then
            // ends; a passed socket keeps its queue for the next run.
            const bool stopping = stop_;
            if (stopping && passed_) return;
            for (size_t i = 0; i < kBatch; ++i) {
                msgs_[i] = {};
                msgs_[i].msg_hdr.msg_iov = &iov_[2 * i];
                msgs_[i].msg_hdr.msg_iovlen = 2;
                msgs_[i].msg_hdr.msg_name = &addrs_[i];
                msgs_[i].msg_hdr.msg_namelen = sizeof addrs_[i];
            }
            int n = recvmmsg(fd_, msgs_.data(), kBatch, stopping ? MSG_DONTWAIT : MSG_WAITFORONE, nullptr);
            if (n <= 0) {
                if (stopping) return;
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                    spdlog::error("udp socket: {}; stops receiving", std::strerror(errno));
                    return;
                }
                continue;  // timed out: check stop_
            }
            {
                std::lock_guard lock(worker_.mu);
                // One clock reading per batch; consecutive datagrams of one
                // sender (the usual case) share one session lookup.
                const auto now = std::chrono::steady_clock::now();
                Entry* last = nullptr;
                size_t last_i = 0;  // the datagram whose sender `last` is
                for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
                    const socklen_t alen = msgs_[i].msg_hdr.msg_namelen;
                    if (!last || alen != msgs_[last_i].msg_hdr.msg_namelen ||
                        std::memcmp(&addrs_[i], &addrs_[last_i], alen) != 0) {
                        asio::ip::udp::endpoint from;
                        std::memcpy(from.data(), &addrs_[i], alen);
                        from.resize(alen);
                        last = entry(from, now);
                        last_i = i;
                    }
                    if (!last) continue;  // refused, not remembered
                    last->last_seen = now;
                    if (!last->session) continue;  // refused
                    const uint8_t* data = slots_.get() + i * kSlot;
                    size_t len = msgs_[i].msg_len;
                    if (len > kSlot) {
                        joined.assign(data, data + kSlot);
                        joined.insert(joined.end(), spill_.get() + i * kSpill, spill_.get() + i * kSpill + (len - kSlot));
                        data = joined.data();
                    }
                    ExporterSession& s = *last->session;
                    std::string problem = s.message(std::span<const uint8_t>(data, len), now);
                    last->records = s.records();
                    if (!problem.empty()) hub_.log_problem(s, problem);
                }
            }
            if (static_cast<size_t>(n) < kBatch) {
                if (stopping) return;
                std::this_thread::sleep_for(nap_);
            }
        }
    }
    struct Entry;
    // The session of `sender`, made on its first datagram; null: refused
    // (outside [listen] allow, or over max_sessions).
    Entry* entry(const asio::ip::udp::endpoint& sender, std::chrono::steady_clock::time_point now) {
        auto key = std::make_pair(sender.address(), sender.port());
        auto it = sessions_.find(key);
        if (it != sessions_.end()) return &it->second;
        if (!hub_.admit(sender.address(), sender.port())) {
            // Remembered (as no session) so that it is counted once, while
            // the table has room: forged sources cannot grow it past that.
            if (sessions_.size() < 2 * hub_.cfg.max_sessions) {
                it = sessions_.emplace(key, Entry{nullptr, now}).first;
                return &it->second;
            }
            return nullptr;
        }
        if (hub_.udp_sessions_now >= hub_.cfg.max_sessions) {
            // Forged or departed sources hold the budget: the longest silent
            // session that never delivered a record gives way.
            auto victim = sessions_.end();
            for (auto v = sessions_.begin(); v != sessions_.end(); ++v) {
                if (v->second.session && v->second.records == 0 && now - v->second.last_seen > kUnprovenGrace &&
                    (victim == sessions_.end() || v->second.last_seen < victim->second.last_seen)) {
                    victim = v;
                }
            }
            if (victim == sessions_.end()) {
                if (hub_.rejected_sessions++ % 1000 == 0) {
                    spdlog::warn("UDP exporter {} refused: {} UDP sessions open ([limits] max_sessions; counted in "
                                 "rejected_sessions)",
                                 endpoint_text(sender.address(), sender.port()), hub_.udp_sessions_now.load());
                }
                return nullptr;
            }
            spdlog::info("UDP session {} (no record delivered) closed for a new exporter: max_sessions reached",
                         victim->second.session->peer());
            ++hub_.evicted_sessions;
            hub_.template_file_used(hub_.template_path(victim->first.first, victim->first.second), false);
            sessions_.erase(victim);
            --hub_.udp_sessions_now;
        }
        ++hub_.udp_sessions_now;
        auto s = hub_.new_session(sender.address(), sender.port(), worker_.model);
        s->set_template_lifetime(std::chrono::seconds(hub_.cfg.udp_template_lifetime_s));
        const std::string tpath = hub_.template_path(sender.address(), sender.port());
        hub_.template_file_used(tpath, true);
        size_t replayed = s->persist_templates(tpath);
        spdlog::info("new UDP exporter {} (thread {}){}", s->peer(), worker_.index,
                     replayed ? " (templates of an earlier run restored)" : "");
        it = sessions_.emplace(key, Entry{std::move(s), now}).first;
        return &it->second;
    }

    Worker& worker_;
    Hub& hub_;
    int fd_;
    bool passed_;
    // At most 20 ms (latency added before decoding; the files are written
    // in batches of up to 100 ms anyway), and no longer than 1 GB/s takes
    // to fill the receive buffer. At 200k records/s, 20 ms naps cost a
    // quarter less CPU than 2 ms naps (docs/benchmarks.md).
    static constexpr std::chrono::microseconds kNap{20000};
    std::chrono::microseconds nap_;
    // A slot holds a datagram of an Ethernet MTU; slot and spill area
    // together the largest UDP payload.
    static constexpr size_t kBatch = 256, kSlot = 2048, kSpill = 65536 - kSlot;
    static constexpr std::chrono::milliseconds kStopCheck{100};
    std::unique_ptr<uint8_t[]> slots_{new uint8_t[kBatch * kSlot]};
    // Not zeroed: only the pages large datagrams land in become resident.
    std::unique_ptr<uint8_t[]> spill_{new uint8_t[kBatch * kSpill]};
    std::array<iovec, 2 * kBatch> iov_{};
    std::array<mmsghdr, kBatch> msgs_{};
    std::array<sockaddr_storage, kBatch> addrs_{};
    std::atomic<bool> stop_{false};
    std::thread thread_;
    struct Entry {
        std::unique_ptr<ExporterSession> session;  // null: refused
        std::chrono::steady_clock::time_point last_seen;
        uint64_t records = 0;  // decoded in this session
    };
    // A new session is not evicted in its first seconds (its templates
    // may come first, its data a moment later).
    static constexpr std::chrono::seconds kUnprovenGrace{10};
    std::map<std::pair<asio::ip::address, uint16_t>, Entry> sessions_;
};

// A UDP listen URL: one socket per worker on the same address and port,
// or the sockets systemd passed for it (a thread each).
class UdpListener {
public:
    UdpListener(std::vector<std::unique_ptr<Worker>>& workers, Hub& hub, const Listener& where) {
        if (!where.fds.empty()) {
            adopt(workers, hub, where);
        } else {
            bind(workers, hub, asio::ip::udp::endpoint(where.address, where.port));
        }
        for (auto& s : sockets_) s->start();
    }
    void expire(std::chrono::steady_clock::time_point now, std::chrono::seconds timeout) {
        for (auto& s : sockets_) s->expire(now, timeout);
    }
    // The kernel's drops summed over every socket on the port.
    uint64_t kernel_drops() const { return udp_kernel_drops(port_); }
    // Bytes queued that this run must read before it stops (a passed
    // socket keeps its queue for the next run).
    size_t pending() const {
        size_t n = 0;
        for (const auto& s : sockets_) n += s->passed() ? 0 : s->pending();
        return n;
    }
    std::string url() const { return url_; }
    uint16_t port() const { return port_; }
    void stop() {
        for (auto& s : sockets_) s->stop();
    }

private:
    // Raises a socket's receive buffer to udp_receive_buffer (never lowers
    // it: a socket unit's ReceiveBuffer= may be larger than an unprivileged
    // process could set); the size in effect.
    static size_t size_buffer(int fd, int want) {
        int have = 0;
        socklen_t len = sizeof have;
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &have, &len);
        if (have / 2 < want) {  // the kernel reports twice the size asked for
            // SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN; else SO_RCVBUF.
            if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
                int before = have;
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
                len = sizeof have;
                getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &have, &len);
                if (have < before) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &before, sizeof before);
            }
            len = sizeof have;
            getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &have, &len);
        }
        return static_cast<size_t>(have);
    }

    void adopt(std::vector<std::unique_ptr<Worker>>& workers, Hub& hub, const Listener& where) {
        size_t got = 0;
        for (size_t i = 0; i < where.fds.size(); ++i) {
            const int fd = where.fds[i];
            // Read with blocking calls and a receive timeout.
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            got = size_buffer(fd, hub.cfg.udp_receive_buffer);
            sockets_.push_back(std::make_unique<UdpSocket>(*workers[i % workers.size()], hub, fd, got, true));
        }
        port_ = where.port;
        url_ = where.address.is_v6() ? fmt::format("udp://[{}]:{}", where.address.to_string(), port_)
                                     : fmt::format("udp://{}:{}", where.address.to_string(), port_);
        const uint64_t drops = udp_kernel_drops(port_);
        spdlog::info("listening on {} (passed by systemd: {} socket{}, receive buffer {} bytes; what arrives while "
                     "the collector restarts waits in them){}",
                     url_, where.fds.size(), where.fds.size() == 1 ? "" : "s", got,
                     drops ? fmt::format("; the kernel dropped {} datagrams on the port since it was opened "
                                         "(earlier runs and the time between them)",
                                         drops)
                           : "");
    }

    void bind(std::vector<std::unique_ptr<Worker>>& workers, Hub& hub, asio::ip::udp::endpoint at) {
        if (at.port() != 0) {
            // Our sockets share the port (SO_REUSEPORT), and so could another
            // process's: a second collector would take a share of the
            // exporters without a word. A socket without the option cannot
            // bind while anyone holds the port.
            asio::ip::udp::socket probe(workers.front()->io);
            probe.open(at.protocol());
            if (at.address().is_v6()) probe.set_option(asio::ip::v6_only(false));
            asio::error_code ec;
            probe.bind(at, ec);
            if (ec == asio::error::address_in_use) {
                throw Error(fmt::format("another process already receives on udp://{} (a second collector would "
                                        "take a share of the exporters); stop it or choose another port",
                                        endpoint_text(at.address(), at.port())));
            }
        }
        // With several sockets the kernel spreads exporters over them by a
        // hash of their address and port, which changes as sockets join:
        // an exporter heard by the first socket alone would move to another
        // once all are bound, and be two sessions on two threads. Until all
        // are bound each socket drops what it is given (as a closed port
        // would); then every exporter stays on one socket.
        const bool several = workers.size() > 1;
        sock_filter drop_all{BPF_RET | BPF_K, 0, 0, 0};
        sock_fprog drop{1, &drop_all};
        std::vector<asio::ip::udp::socket> socks;
        for (auto& w : workers) {
            asio::ip::udp::socket sock(w->io);
            sock.open(at.protocol());
            if (at.address().is_v6()) sock.set_option(asio::ip::v6_only(false));
            int on = 1;
            if (several && (setsockopt(sock.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
                            setsockopt(sock.native_handle(), SOL_SOCKET, SO_ATTACH_FILTER, &drop, sizeof drop) != 0)) {
                throw asio::system_error(asio::error_code(errno, asio::system_category()));
            }
            size_buffer(sock.native_handle(), hub.cfg.udp_receive_buffer);
            sock.bind(at);
            if (socks.empty()) at.port(sock.local_endpoint().port());  // port 0: the others join the port it got
            socks.push_back(std::move(sock));
        }
        for (auto& sock : socks) {
            int unused = 0;
            if (several && setsockopt(sock.native_handle(), SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused) != 0) {
                throw asio::system_error(asio::error_code(errno, asio::system_category()));
            }
        }
        port_ = at.port();
        asio::socket_base::receive_buffer_size got;
        socks.front().get_option(got);
        url_ = fmt::format("udp://{}", endpoint_text(socks.front().local_endpoint().address(), port_));
        spdlog::info("listening on {} (receive buffer {} bytes{})", url_, got.value(),
                     several ? fmt::format(", {} sockets with SO_REUSEPORT", workers.size()) : "");
        for (size_t i = 0; i < socks.size(); ++i) {
            sockets_.push_back(std::make_unique<UdpSocket>(*workers[i], hub, socks[i].release(),
                                                           static_cast<size_t>(got.value()), false));
        }
    }

    std::vector<std::unique_ptr<UdpSocket>> sockets_;
    uint16_t port_ = 0;
    std::string url_;
};

// One TCP connection or SCTP association: IPFIX messages back to back,
// framed by their length field (an SCTP message that holds one IPFIX
// message reads the same way). A broken frame (length < 16, version not
// 10) ends the connection: nothing after it can be trusted. Timeouts free
// the slot of a peer that does not send: its first message must arrive
// within connection_start_timeout, a message begun must end within
// connection_read_timeout, and a connection silent for
// connection_idle_timeout is closed.
template <typename Protocol>
class StreamConnection : public std::enable_shared_from_this<StreamConnection<Protocol>> {
public:
    static constexpr const char* kName = StreamName<Protocol>::label;
    StreamConnection(typename Protocol::socket sock, Worker& w, Hub& hub, std::unique_ptr<ExporterSession> session,
                     asio::ip::address addr)
        : sock_(std::move(sock)),
          worker_(w),
          hub_(hub),
          session_(std::move(session)),
          addr_(std::move(addr)),
          timer_(w.io),
          accepted_(std::chrono::steady_clock::now()) {}
    ~StreamConnection() {
        // the worker's UDP sockets decode with the same model meanwhile
        std::lock_guard lock(worker_.mu);
        {
            std::lock_guard hub_lock(hub_.mu);
            if (--hub_.connections_per_address[addr_] == 0) hub_.connections_per_address.erase(addr_);
            --hub_.connections_now;
        }
        session_.reset();
    }
    Worker& worker() const { return worker_; }
    void start() {
        arm(hub_.cfg.connection_start_timeout_s);
        read();
    }
    // Bytes the kernel holds for us that are not read yet.
    size_t pending() const {
        asio::error_code ec;
        size_t n = sock_.available(ec);
        return ec ? 0 : n;
    }
    // Whether a whole IPFIX message has arrived yet (a peer that never
    // sends one is the first to give way when the connections are full).
    bool proven() const { return proven_; }
    std::chrono::steady_clock::time_point accepted() const { return accepted_; }
    bool evicted = false;  // chosen to give way (the listener's thread only)
    // SCTP, on the worker's thread: starts the association's graceful
    // shutdown. The exporter's stack takes no new message from then on but
    // delivers every one it already took, and we read on until it ends.
    void shutdown_send() {
        asio::error_code ec;
        sock_.shutdown(asio::socket_base::shutdown_send, ec);
    }
    // On the worker's thread: closes the connection (the pending read ends).
    void close(const char* why) {
        if (!sock_.is_open()) return;
        spdlog::warn("exporter {}: {} connection closed: {}", session_->peer(), kName, why);
        asio::error_code ec;
        sock_.close(ec);
        timer_.cancel();
    }

private:
    // Reads what is there; every whole message in the buffer is decoded.
    void read() {
        auto self = this->shared_from_this();
        if (buf_.size() < have_ + kRead) buf_.resize(have_ + kRead);
        sock_.async_read_some(asio::buffer(buf_.data() + have_, kRead), [this, self](const asio::error_code& ec,
                                                                                   size_t n) {
            if (ec) return done(ec);
            have_ += n;
            size_t off = 0;
            bool broken = false;
            {
                std::lock_guard lock(worker_.mu);
                while (have_ - off >= 4) {
                    const uint8_t* p = buf_.data() + off;
                    uint16_t version = static_cast<uint16_t>(p[0] << 8 | p[1]);
                    uint16_t len = static_cast<uint16_t>(p[2] << 8 | p[3]);
                    if (version != 10 || len < 16) {
                        spdlog::warn("exporter {}: {} stream broken (version {}, message length {}); closing the "
                                     "connection",
                                     session_->peer(), kName, version, len);
                        // counted as malformed
                        session_->message(std::span<const uint8_t>(p, std::min<size_t>(have_ - off, 16)));
                        broken = true;
                        break;
                    }
                    if (have_ - off < len) break;
                    std::string problem = session_->message(std::span<const uint8_t>(p, len));
                    if (!problem.empty()) hub_.log_problem(*session_, problem);
                    proven_ = true;
                    off += len;
                }
            }
            if (broken) {
                have_ = 0;
                asio::error_code ignored;
                sock_.close(ignored);
                timer_.cancel();
                return;
            }
            if (off) {
                std::memmove(buf_.data(), buf_.data() + off, have_ - off);
                have_ -= off;
                arm(have_ ? hub_.cfg.connection_read_timeout_s : hub_.cfg.connection_idle_timeout_s);
            } else if (proven_ && have_ == n) {
                arm(hub_.cfg.connection_read_timeout_s);  // a message begins
            }
            if (buf_.size() > kKeep && have_ < kKeep) buf_.resize(std::max<size_t>(have_, kKeep));
            read();
        });
    }
    // (Re)starts the one timer: `seconds` from now the connection is
    // closed unless a message arrives first (0: no limit).
    void arm(int64_t seconds) {
        timer_.cancel();
        if (seconds <= 0) return;
        auto self = this->shared_from_this();
        timer_.expires_after(std::chrono::seconds(seconds));
        timer_.async_wait([this, self, seconds](const asio::error_code& ec) {
            if (ec || !sock_.is_open()) return;
            ++hub_.timed_out_connections;
            close(!proven_   ? "no whole IPFIX message within connection_start_timeout"
                  : have_    ? "a message begun did not end within connection_read_timeout"
                             : "nothing received within connection_idle_timeout");
        });
    }
    void done(const asio::error_code& ec) {
        timer_.cancel();
        if (have_) {
            // A message cut off by the end of the connection: counted as
            // malformed, like any message that cannot be decoded.
            std::lock_guard lock(worker_.mu);
            spdlog::warn("exporter {}: {} connection ended inside a message ({} of its bytes arrived)",
                         session_->peer(), kName, have_);
            session_->message(std::span<const uint8_t>(buf_.data(), have_));
            have_ = 0;
        }
        if (ec == asio::error::eof) {
            spdlog::info("exporter {} closed its {} connection", session_->peer(), kName);
        } else if (ec != asio::error::operation_aborted) {
            spdlog::warn("exporter {}: {} connection lost: {}", session_->peer(), kName, ec.message());
        }
    }

    static constexpr size_t kRead = 65536, kKeep = 2 * 65536;
    typename Protocol::socket sock_;
    Worker& worker_;
    Hub& hub_;
    std::unique_ptr<ExporterSession> session_;
    asio::ip::address addr_;
    asio::steady_timer timer_;
    std::chrono::steady_clock::time_point accepted_;
    std::vector<uint8_t> buf_;
    size_t have_ = 0;
    std::atomic<bool> proven_{false};
};

template <typename Protocol>
class StreamListener {
public:
    using Connection = StreamConnection<Protocol>;
    static constexpr const char* kName = StreamName<Protocol>::label;
    // Accepts on `io`; each connection goes to the next of `workers`.
    // `passed`: a listening socket systemd passed (it stays open while
    // the collector restarts: exporters' connections wait in its backlog);
    // -1: binds `ep`.
    StreamListener(asio::io_context& io, std::vector<std::unique_ptr<Worker>>& workers, Hub& hub,
                   const typename Protocol::endpoint& ep, int passed)
        : workers_(workers), hub_(hub), acceptor_(io), pause_(io) {
        if (passed >= 0) {
            acceptor_.assign(ep.address().is_v6() ? Protocol::v6() : Protocol::v4(), passed);
        } else {
            acceptor_.open(ep.protocol());
            if (ep.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(false));
            acceptor_.set_option(asio::socket_base::reuse_address(true));
            acceptor_.bind(ep);
            acceptor_.listen();
        }
        url_ = fmt::format("{}://{}", StreamName<Protocol>::scheme,
                           endpoint_text(acceptor_.local_endpoint().address(), acceptor_.local_endpoint().port()));
        spdlog::info("listening on {}{}", url_,
                     passed >= 0 ? " (passed by systemd: connections wait in its backlog while the collector restarts)"
                                 : "");
        accept();
    }
    std::string url() const { return url_; }
    // Stops accepting. SCTP associations are also shut down gracefully:
    // pending() then stays above 0 until each has delivered what its
    // exporter had already sent, so nothing the exporter handed over is lost.
    void close() {
        asio::error_code ec;
        acceptor_.close(ec);
        pause_.cancel();
        if constexpr (std::is_same_v<Protocol, sctp>) {
            for (auto& w : conns_) {
                if (auto c = w.lock()) asio::post(c->worker().io, [c] { c->shutdown_send(); });
            }
        }
    }
    size_t pending() const {
        size_t n = 0;
        for (const auto& w : conns_) {
            if (auto c = w.lock()) n += c->pending() + (std::is_same_v<Protocol, sctp> ? 1 : 0);
        }
        return n;
    }

private:
    void accept() {
        Worker& w = *workers_[next_worker_++ % workers_.size()];
        acceptor_.async_accept(w.io, [this, &w](const asio::error_code& ec, typename Protocol::socket sock) {
            if (ec == asio::error::operation_aborted) return;
            std::erase_if(conns_, [](const std::weak_ptr<Connection>& c) { return c.expired(); });
            if (ec) {
                // Out of descriptors (EMFILE, ENFILE) or memory: retrying at
                // once would spin; the connection waits in the backlog.
                if (hub_.accept_errors++ % 100 == 0) {
                    spdlog::error("{} accept failed: {}; accepting again in 100 ms (counted in accept_errors; "
                                  "raise LimitNOFILE or lower [limits] max_connections)",
                                  kName, ec.message());
                }
                pause_.expires_after(std::chrono::milliseconds(100));
                pause_.async_wait([this](const asio::error_code& e) {
                    if (!e) accept();
                });
                return;
            }
            asio::error_code peer_ec;
            auto peer = sock.remote_endpoint(peer_ec);
            if (!peer_ec) admit(std::move(sock), plain(peer.address()), peer.port(), w);
            accept();
        });
    }
    void admit(typename Protocol::socket sock, const asio::ip::address& addr, uint16_t port, Worker& w) {
        if (!hub_.admit(addr, port)) return;  // closed as `sock` goes
        const char* full = nullptr;
        {
            std::lock_guard lock(hub_.mu);
            if (hub_.connections_per_address[addr] >= hub_.cfg.max_connections_per_address) {
                full = "max_connections_per_address";
                if (hub_.connections_per_address[addr] == 0) hub_.connections_per_address.erase(addr);
            }
        }
        if (!full && hub_.connections_now >= hub_.max_connections && !evict_one()) full = "max_connections";
        if (full) {
            if (hub_.rejected_connections++ % 1000 == 0) {
                spdlog::warn("{} exporter {} refused: [limits] {} reached ({} connections open; counted in "
                             "rejected_connections)",
                             kName, endpoint_text(addr, port), full, hub_.connections_now.load());
            }
            return;
        }
        {
            std::lock_guard lock(hub_.mu);
            ++hub_.connections_per_address[addr];
            ++hub_.connections_now;
        }
        std::unique_ptr<ExporterSession> s;
        {
            std::lock_guard lock(w.mu);  // its model is in use on its UDP sockets' threads
            s = hub_.new_session(addr, port, w.model);
        }
        spdlog::info("new {} exporter {} (thread {})", kName, s->peer(), w.index);
        auto c = std::make_shared<Connection>(std::move(sock), w, hub_, std::move(s), addr);
        conns_.push_back(c);
        asio::post(w.io, [c] { c->start(); });
    }
    // Full: the oldest connection that has not sent a whole message yet
    // gives way (an idle peer cannot lock exporters out). False: none.
    bool evict_one() {
        std::shared_ptr<Connection> victim;
        for (const auto& wc : conns_) {
            auto c = wc.lock();
            if (c && !c->proven() && !c->evicted && (!victim || c->accepted() < victim->accepted())) victim = c;
        }
        if (!victim) return false;
        victim->evicted = true;  // its close is on its way: not chosen twice
        ++hub_.evicted_connections;
        asio::post(victim->worker().io, [victim] { victim->close("evicted for a new connection: max_connections "
                                                                 "reached and it had sent no IPFIX message"); });
        return true;
    }

    std::vector<std::unique_ptr<Worker>>& workers_;
    size_t next_worker_ = 0;
    Hub& hub_;
    typename Protocol::acceptor acceptor_;
    asio::steady_timer pause_;
    std::vector<std::weak_ptr<Connection>> conns_;
    std::string url_;
};

using TcpListener = StreamListener<asio::ip::tcp>;
using SctpListener = StreamListener<sctp>;

// Decode threads: as configured, or one per CPU this process may run on, at
// most 4.
size_t collector_threads(const CollectorConfig& cfg) {
    if (cfg.threads > 0) return cfg.threads;
    cpu_set_t set;
    CPU_ZERO(&set);
    int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return static_cast<size_t>(std::clamp(cpus, 1, 4));
}

}  // namespace

int run_collector(const CollectorConfig& cfg, const std::function<CollectorConfig()>& reread,
                  const std::string& config_path) {
    validate_collector_config(cfg);
    // What is in effect: a reload changes what it may (allow, rotation,
    // log level); the rest stays as started.
    CollectorConfig running = cfg;
    ServiceNotifier systemd;
    // Where to listen, before anything is touched: nothing to listen on, or
    // a url at odds with systemd's sockets, is refused first.
    const std::vector<Listener> plan = plan_listeners(cfg.listen, take_inherited_sockets());
    Hub hub(cfg);  // outlives the io_contexts: TCP connections report to it when they go
    // Workers: the first uses the main thread's loop (which also serves
    // signals, timers, metrics and TCP accepts) and the Hub's model; each
    // other one has a loop on a thread and a model of its own. Models
    // outlive the loops (TCP sessions in their handlers use them).
    const size_t n_threads = collector_threads(cfg);
    std::vector<std::unique_ptr<InfoModel>> models;
    asio::io_context io;
    std::vector<std::unique_ptr<asio::io_context>> loops;
    std::vector<std::unique_ptr<Worker>> workers;
    for (size_t i = 0; i < n_threads; ++i) {
        InfoModel* model = &hub.model;
        asio::io_context* loop = &io;
        if (i > 0) {
            models.push_back(std::make_unique<InfoModel>(cfg.pen));
            model = models.back().get();
            loops.push_back(std::make_unique<asio::io_context>());
            loop = loops.back().get();
        }
        workers.push_back(std::unique_ptr<Worker>(new Worker{i, *loop, *model, {}}));
    }
    std::vector<std::unique_ptr<UdpListener>> udp;
    std::vector<std::unique_ptr<TcpListener>> tcp;
    std::vector<std::unique_ptr<SctpListener>> sctps;
    // What each listener really is (port 0 resolved), for /health and STATUS=.
    std::vector<std::string> listening;
    for (const Listener& l : plan) {
        const std::string& text = l.text;
        const int passed = l.fds.empty() ? -1 : l.fds.front();
        try {
            if (l.kind == CollectorUrl::Kind::udp) {
                udp.push_back(std::make_unique<UdpListener>(workers, hub, l));
                listening.push_back(udp.back()->url());
            } else if (l.kind == CollectorUrl::Kind::tcp) {
                tcp.push_back(std::make_unique<TcpListener>(io, workers, hub, asio::ip::tcp::endpoint(l.address, l.port),
                                                            passed));
                listening.push_back(tcp.back()->url());
            } else if (l.kind == CollectorUrl::Kind::sctp) {
                if (std::string why = sctp_unavailable(); !why.empty()) {
                    throw Error(fmt::format("cannot listen on {}: {}", text, why));
                }
                sctps.push_back(
                    std::make_unique<SctpListener>(io, workers, hub, sctp::endpoint(l.address, l.port), passed));
                listening.push_back(sctps.back()->url());
            } else {
                throw Error(fmt::format("--listen {}: only udp://, tcp:// and sctp:// can be listened on", text));
            }
        } catch (const asio::system_error& e) {
            throw Error(fmt::format("cannot listen on {}: {}", text, e.code().message()));
        }
    }

    auto kernel_drops = [&] {
        uint64_t d = 0;
        for (auto& u : udp) d += u->kernel_drops();
        return d;
    };
    uint64_t drops_at_start = kernel_drops();

    std::unique_ptr<HttpServer> metrics;
    if (!cfg.metrics.empty() && cfg.metrics != "off") {
        CollectorUrl m = parse_listen_url("tcp://" + cfg.metrics);
        auto render = [&]() {
            PrometheusText o;
            struct Row {
                std::string labels;
                const ExporterCounters* c;
            };
            std::vector<Row> rows;
            // Rows are never removed: the pointers stay valid.
            hub.counters.visit([&rows](const std::string& exporter, const std::string& domain,
                                       const ExporterCounters& c) {
                rows.push_back({fmt::format("exporter=\"{}\",domain=\"{}\"", PrometheusText::escape(exporter), domain),
                                &c});
            });
            auto per = [&](const char* name, const char* help, std::atomic<uint64_t> ExporterCounters::*f) {
                o.family(name, "counter", help);
                for (const auto& r : rows) o.sample(name, r.labels, (r.c->*f).load());
            };
            per("bpfix_collector_messages_total", "IPFIX messages decoded, per exporter address and domain",
                &ExporterCounters::messages);
            per("bpfix_collector_records_total", "data records decoded", &ExporterCounters::records);
            per("bpfix_collector_bytes_total", "IPFIX message bytes received", &ExporterCounters::bytes);
            per("bpfix_collector_lost_records_total",
                "records lost in transit (sequence number gaps a later message confirmed)",
                &ExporterCounters::lost_records);
            per("bpfix_collector_unknown_template_sets_total",
                "data sets not decoded: their template was not (yet) received", &ExporterCounters::unknown_template_sets);
            per("bpfix_collector_unknown_template_records_total",
                "records in those sets, as the sequence numbers tell", &ExporterCounters::unknown_template_records);
            per("bpfix_collector_out_of_order_messages_total", "messages that arrived late (sequence number behind)",
                &ExporterCounters::out_of_order);
            per("bpfix_collector_sequence_resets_total", "times an exporter's sequence numbers started anew",
                &ExporterCounters::sequence_resets);
            per("bpfix_collector_implausible_sequence_total",
                "sequence jumps no later message confirmed (not counted as loss)", &ExporterCounters::implausible_sequence);
            per("bpfix_collector_malformed_messages_total", "messages that could not be decoded in full",
                &ExporterCounters::malformed);
            CounterSums t = hub.counters.sums();
            o.one("bpfix_collector_sessions", "gauge", "exporter transport sessions open (UDP sessions and connections)",
                  hub.udp_sessions_now.load() + hub.connections_now.load());
            o.one("bpfix_collector_connections", "gauge", "TCP and SCTP exporter connections open",
                  hub.connections_now.load());
            o.one("bpfix_collector_all_records_total", "counter", "data records decoded, every exporter", t.records);
            o.one("bpfix_collector_all_malformed_messages_total", "counter", "malformed messages, every exporter",
                  t.malformed);
            o.one("bpfix_collector_exporter_series_overflow_total", "counter",
                  "sessions' domains counted in the exporter=\"other\" row (max_exporter_series reached)",
                  hub.counters.overflowed());
            o.one("bpfix_collector_rejected_sessions_total", "counter", "UDP sources refused over max_sessions",
                  hub.rejected_sessions.load());
            o.one("bpfix_collector_evicted_sessions_total", "counter",
                  "UDP sessions that delivered no record, closed for a new exporter at max_sessions",
                  hub.evicted_sessions.load());
            o.one("bpfix_collector_rejected_connections_total", "counter",
                  "TCP/SCTP connections refused over max_connections or max_connections_per_address",
                  hub.rejected_connections.load());
            o.one("bpfix_collector_evicted_connections_total", "counter",
                  "connections that had sent no message, closed for a new one at max_connections",
                  hub.evicted_connections.load());
            o.one("bpfix_collector_timed_out_connections_total", "counter",
                  "connections closed by connection_start/read/idle_timeout", hub.timed_out_connections.load());
            o.one("bpfix_collector_accept_errors_total", "counter",
                  "accept() failures (out of file descriptors, ...); accepting pauses 100 ms",
                  hub.accept_errors.load());
            o.one("bpfix_collector_refused_exporters_total", "counter", "sessions from exporters outside [listen] allow",
                  hub.refused_exporters.load());
            o.one("bpfix_collector_domain_limit_hits_total", "counter",
                  "messages refused: a new observation domain over max_domains", hub.shared.domain_limit_hits.load());
            o.family("bpfix_collector_written_records_total", "counter",
                     "records written to the output files, per format");
            for (const auto& out : hub.outs) {
                o.sample("bpfix_collector_written_records_total", fmt::format("format=\"{}\"", out.format),
                         out.queue->records_written());
            }
            o.sample("bpfix_collector_written_records_total", "format=\"pcap\"", hub.pcap->packets_written());
            o.one("bpfix_collector_output_dropped_records_total", "counter",
                  "records dropped because an output fell behind or the disk refused", hub.dropped());
            o.one("bpfix_collector_template_limit_hits_total", "counter",
                  "templates refused because a session held max_templates", hub.shared.template_limit_hits.load());
            o.one("bpfix_collector_templates_expired_total", "counter",
                  "UDP templates expired (not sent again within udp_template_lifetime)",
                  hub.shared.templates_expired.load());
            o.one("bpfix_collector_udp_kernel_drops_total", "counter",
                  "datagrams the kernel dropped on the UDP sockets (receive buffer full)",
                  kernel_drops() - drops_at_start);
            o.one("bpfix_collector_files_total", "counter", "output files finished (rotations)", hub.files());
            o.one("bpfix_collector_template_files_removed_total", "counter",
                  ".templates files of closed sessions removed (older than udp_template_lifetime, or beyond "
                  "max_sessions files)",
                  hub.template_files_removed.load());
            RecoveryTotals rec = recovery_totals();
            o.one("bpfix_collector_recovered_files_total", "counter",
                  "files of a run that did not end (kill -9, crash), finished at start", rec.files);
            o.one("bpfix_collector_recovered_bytes_dropped_total", "counter",
                  "bytes of records cut off at such a crash, dropped at recovery", rec.bytes_dropped);
            o.one("bpfix_collector_damaged_files_total", "counter",
                  "files of such a run that were not of their format, set aside as .damaged", rec.damaged);
            o.one("bpfix_collector_http_refused_total", "counter",
                  "HTTP clients closed at once: [metrics] max_connections were open", metrics->refused());
            o.one("bpfix_collector_http_timeouts_total", "counter",
                  "HTTP clients whose request header did not arrive within [metrics] header_timeout",
                  metrics->timed_out());
            o.one("bpfix_collector_http_accept_errors_total", "counter",
                  "HTTP accept() failures (out of descriptors); accepting pauses 100 ms", metrics->accept_errors());
            o.one("bpfix_collector_http_busy_total", "counter",
                  "pcap API requests answered 503: [metrics] pcap_max_requests transfers were running",
                  metrics->busy());
            return o.text();
        };
        try {
            metrics = std::make_unique<HttpServer>(
                io, asio::ip::tcp::endpoint(resolve_address(m.host), m.port),
                HttpServer::Limits{cfg.http_max_connections, std::chrono::seconds(cfg.http_header_timeout_s),
                                   cfg.pcap_max_requests});
        } catch (const asio::system_error& e) {
            throw Error(fmt::format("cannot serve metrics on {}: {} (set another with --metrics ADDR:PORT, or "
                                    "--metrics off)",
                                    cfg.metrics, e.code().message()));
        }
        metrics->handle("/metrics", [render](const HttpServer::Request&) {
            return HttpServer::Response{200, "text/plain; version=0.0.4", render()};
        });
        // Served by the main loop: an answer means it turns.
        metrics->handle("/health", [&hub, &listening](const HttpServer::Request&) {
            return HttpServer::Response{200, "text/plain",
                                        fmt::format("ok: listening on {}; {} sessions\n", fmt::join(listening, ", "),
                                                    hub.udp_sessions_now.load() + hub.connections_now.load())};
        });
        metrics->handle_stream("/api/v1/pcap", pcap_api(cfg.output_dir, cfg.pcap_max_memory));
        spdlog::info("metrics on http://{0}/metrics, health on http://{0}/health, stored packets on "
                     "http://{0}/api/v1/pcap",
                     metrics->where());
    }

    std::chrono::steady_clock::time_point drain_deadline;
    asio::steady_timer drain_timer(io);
    int quiet_checks = 0;
    std::function<void()> check_drained = [&] {
        size_t pending = 0;
        for (auto& u : udp) pending += u->pending();
        for (auto& t : tcp) pending += t->pending();
        for (auto& t : sctps) pending += t->pending();
        quiet_checks = pending ? 0 : quiet_checks + 1;
        if (quiet_checks >= 2 || std::chrono::steady_clock::now() > drain_deadline) {
            if (pending) spdlog::warn("stopping with {} bytes (or SCTP associations) still unread after 5 s", pending);
            for (auto& u : udp) u->stop();
            for (auto& l : loops) l->stop();
            io.stop();
            return;
        }
        drain_timer.expires_after(std::chrono::milliseconds(20));
        drain_timer.async_wait([&](const asio::error_code& ec) {
            if (!ec) check_drained();
        });
    };
    // SIGHUP: the configuration again (when read from somewhere), checked
    // whole before anything changes, then new files (under the new
    // rotation when it changed). A bad configuration is refused; the files
    // still start anew, as SIGHUP always did.
    auto reload = [&] {
        if (!reread) {
            spdlog::info("SIGHUP: finishing the current output files");
            hub.rotate_all();
            return;
        }
        systemd.reloading();
        spdlog::info("SIGHUP: reading the configuration again ({})",
                     config_path.empty() ? "the command line only: no --config file" : config_path);
        std::optional<RotationLimits> limits;
        try {
            CollectorConfig next = reread();
            CollectorReloadPlan plan = plan_collector_reload(running, next);
            warn_restart_only(plan.restart_only, "collector");
            if (plan.allow) hub.set_allow(next.allow);
            if (plan.log_level) set_log_level(next.log_level);
            if (plan.rotation) {
                limits = RotationLimits{next.rotate_interval_s, next.rotate_size_bytes, next.keep_seconds,
                                        next.keep_bytes};
            }
            adopt_collector_reloadable(running, next);
            spdlog::info("reload: applied (changed: {}); finishing the current output files", plan.summary());
        } catch (const std::exception& e) {
            spdlog::error("reload refused; still running with the configuration in effect: {}; finishing the "
                          "current output files",
                          e.what());
        }
        hub.rotate_all(limits);
        systemd.ready(fmt::format("listening on {}", fmt::join(listening, ", ")));
    };
    DaemonSignals signals(io);
    signals.serve(reload, [&](int sig) {
        // Stop taking new connections, then read what the kernel has
        // already accepted for us (TCP data it acknowledged, queued
        // datagrams) before stopping: nothing accepted is lost.
        spdlog::info("signal {}: finishing (reading what is already received)", sig);
        systemd.stopping();
        for (auto& t : tcp) t->close();
        for (auto& t : sctps) t->close();
        drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        check_drained();
    });
    asio::steady_timer timer(io);
    std::function<void()> arm = [&] {
        timer.expires_after(std::chrono::milliseconds(static_cast<int64_t>(cfg.stats_interval_s * 1000)));
        timer.async_wait([&](const asio::error_code& ec) {
            if (ec) return;
            CounterSums t = hub.counters.sums();
            spdlog::info("sessions={} messages={} records={} written={} lost_in_transit={} unknown_template={} "
                         "malformed={} udp_kernel_drops={} output_dropped={}",
                         hub.shared.sessions.load(), t.messages, t.records, hub.written(), t.lost_records,
                         t.unknown_template_sets, t.malformed, kernel_drops() - drops_at_start, hub.dropped());
            arm();
        });
    };
    arm();
    // UDP sessions end when their exporter goes silent (a restarted
    // exporter comes back from a new port; without this the old sessions
    // would pile up until max_sessions refuses new ones).
    asio::steady_timer expiry(io);
    auto timeout = std::chrono::seconds(cfg.udp_session_timeout_s);
    auto period = std::chrono::milliseconds(std::clamp<int64_t>(cfg.udp_session_timeout_s * 250, 250, 10000));
    std::function<void()> arm_expiry = [&] {
        expiry.expires_after(period);
        expiry.async_wait([&](const asio::error_code& ec) {
            if (ec) return;
            for (auto& u : udp) u->expire(std::chrono::steady_clock::now(), timeout);
            hub.prune_templates();
            arm_expiry();
        });
    };
    hub.prune_templates();  // what earlier runs left
    arm_expiry();
    // The other decode threads; joined (their loops stopped) however this
    // function is left.
    struct Threads {
        std::vector<std::unique_ptr<asio::io_context>>& loops;
        std::vector<std::thread> threads;
        ~Threads() {
            for (auto& l : loops) l->stop();
            for (auto& t : threads) t.join();
        }
    } threads{loops, {}};
    for (auto& l : loops) {
        threads.threads.emplace_back([&l] {
            auto guard = asio::make_work_guard(*l);  // idle until a TCP connection comes
            l->run();
        });
    }
    if (n_threads > 1) spdlog::info("decoding on {} threads", n_threads);
    // systemd (Type=notify): ready once every listener is bound; the
    // watchdog pings come from the main loop, which also serves signals,
    // timers and metrics.
    auto status = [&] {
        CounterSums t = hub.counters.sums();
        return fmt::format("listening on {}; {} sessions, {} records, {} written, {} lost in transit",
                           fmt::join(listening, ", "), hub.udp_sessions_now.load() + hub.connections_now.load(),
                           t.records, hub.written(), t.lost_records);
    };
    systemd.ready(fmt::format("listening on {}", fmt::join(listening, ", ")));
    systemd.start_watchdog(io, status);
    io.run();
    systemd.stop_watchdog();
    for (auto& u : udp) u->stop();
    for (auto& l : loops) l->stop();
    for (auto& t : threads.threads) t.join();
    threads.threads.clear();

    hub.stop_all();
    CounterSums t = hub.counters.sums();
    std::string summary = fmt::format(
        "bpfix-collector: summary: sessions={} messages={} records={} written={} output_dropped={} "
        "lost_in_transit={} unknown_template_sets={} unknown_template_records={} out_of_order={} "
        "sequence_resets={} implausible_sequence={} malformed={} rejected_sessions={} evicted_sessions={} "
        "rejected_connections={} evicted_connections={} timed_out_connections={} accept_errors={} "
        "refused_exporters={} domain_limit_hits={} template_limit_hits={} templates_expired={} "
        "udp_kernel_drops={} files={} recovered_files={} recovered_bytes_dropped={} damaged_files={} "
        "template_files_removed={}",
        hub.shared.sessions.load(), t.messages, t.records, hub.written(), hub.dropped(), t.lost_records,
        t.unknown_template_sets, t.unknown_template_records, t.out_of_order, t.sequence_resets,
        t.implausible_sequence, t.malformed, hub.rejected_sessions.load(), hub.evicted_sessions.load(),
        hub.rejected_connections.load(), hub.evicted_connections.load(), hub.timed_out_connections.load(),
        hub.accept_errors.load(), hub.refused_exporters.load(), hub.shared.domain_limit_hits.load(),
        hub.shared.template_limit_hits.load(), hub.shared.templates_expired.load(), kernel_drops() - drops_at_start,
        hub.files(), recovery_totals().files, recovery_totals().bytes_dropped, recovery_totals().damaged,
        hub.template_files_removed.load());
    std::fprintf(stderr, "%s\n", summary.c_str());
    for (const auto& o : hub.outs) {
        std::fprintf(stderr, "bpfix-collector: %s output: written=%llu dropped_records=%llu files=%llu\n",
                     o.format.c_str(), static_cast<unsigned long long>(o.queue->records_written()),
                     static_cast<unsigned long long>(o.queue->records_dropped()),
                     static_cast<unsigned long long>(o.queue->files_finished()));
    }
    std::fprintf(stderr, "bpfix-collector: pcap store: packets=%llu dropped_packets=%llu files=%llu\n",
                 static_cast<unsigned long long>(hub.pcap->packets_written()),
                 static_cast<unsigned long long>(hub.pcap->packets_dropped()),
                 static_cast<unsigned long long>(hub.pcap->files_finished()));
    if (hub.ipfix) {
        std::fprintf(stderr, "bpfix-collector: ipfix output: messages=%llu dropped_records=%llu\n",
                     static_cast<unsigned long long>(hub.ipfix->messages_written()),
                     static_cast<unsigned long long>(hub.ipfix->records_dropped()));
    }
    return hub.dropped() ? 1 : 0;
}

}  // namespace bpfix
