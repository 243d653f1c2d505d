#include "ipfix_output.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "error.h"

namespace bpfix {

namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
           p[3];
}
void set16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void set32(uint8_t* p, uint32_t v) {
    set16(p, static_cast<uint16_t>(v >> 16));
    set16(p + 2, static_cast<uint16_t>(v));
}

// A template or options template record's length, from its field count.
size_t template_record_len(const uint8_t* p, size_t avail, uint16_t set_id) {
    size_t head = set_id == 3 ? 6 : 4;
    if (avail < 4) return 0;
    uint16_t count = be16(p + 2);
    if (count == 0) return 4;
    size_t q = head;
    for (uint16_t i = 0; i < count; ++i) {
        if (q + 4 > avail) return 0;
        q += (p[q] & 0x80) ? 8 : 4;
    }
    return q > avail ? 0 : q;
}

int64_t wall_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

namespace {

// Crash recovery: the messages of a file up to the first one cut off.
uint64_t whole_messages(const std::string& path, uint64_t size) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw Error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    uint64_t off = 0;
    uint8_t head[4];
    while (off + 16 <= size && std::fseek(f.get(), static_cast<long>(off), SEEK_SET) == 0 &&
           std::fread(head, 1, 4, f.get()) == 4) {
        uint16_t len = be16(head + 2);
        if (be16(head) != 10 || len < 16) {
            if (off == 0) throw Error("it does not begin with an IPFIX message");
            break;  // bytes of a message being written when it stopped
        }
        if (off + len > size) break;
        off += len;
    }
    return off;
}

RotatingWriter::Options with_recovery(RotatingWriter::Options o) {
    o.whole = whole_messages;
    return o;
}

}  // namespace

IpfixOutput::IpfixOutput(RotatingWriter::Options opt, uint64_t max_queued_bytes)
    : writer_(with_recovery(std::move(opt))),
      max_file_bytes_(opt.max_bytes),
      worker_(max_queued_bytes, [this](std::deque<Item>& b, bool rotate, bool stop) { write_batch(b, rotate, stop); }) {}

IpfixOutput::~IpfixOutput() { stop(); }

bool IpfixOutput::push(uint64_t session, std::span<const uint8_t> message, uint64_t records) {
    constexpr size_t kItemBytes = 256 << 10;
    auto append = [&](Item& item) {
        if (!item.bytes.empty() && item.bytes.size() + message.size() > kItemBytes) return false;
        item.messages.push_back({session, item.bytes.size(), message.size(), records});
        item.bytes.insert(item.bytes.end(), message.begin(), message.end());
        return true;
    };
    auto make = [&] {
        Item item;
        {
            // a buffer the writer is done with: no fresh pages to fault in
            std::lock_guard lock(mu_);
            if (!spare_.empty()) {
                item.bytes = std::move(spare_.back());
                spare_.pop_back();
            }
        }
        item.bytes.reserve(std::max(kItemBytes, message.size()));
        append(item);
        return item;
    };
    if (worker_.push_merged(message.size(), append, make)) return true;
    std::lock_guard lock(mu_);
    dropped_ += records;
    return false;
}

uint64_t IpfixOutput::messages_written() const {
    std::lock_guard lock(mu_);
    return written_;
}

uint64_t IpfixOutput::records_dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
}

void IpfixOutput::write_batch(std::deque<Item>& batch, bool rotate, bool stop) {
    int64_t now = wall_now();
    for (const auto& item : batch) {
        for (const auto& q : item.messages) {
            Message m{q.session, std::span<const uint8_t>(item.bytes.data() + q.offset, q.length), q.records};
            try {
                write_one(m, now);
            } catch (const Error& e) {
                spdlog::error("{}", e.what());
                std::lock_guard lock(mu_);
                dropped_ += m.records;
            }
        }
    }
    {
        std::lock_guard lock(mu_);
        for (auto& item : batch) {
            if (spare_.size() >= kSpareItems) break;
            item.bytes.clear();
            spare_.push_back(std::move(item.bytes));
        }
    }
    try {
        flush(now);
        if (batch.empty()) writer_.tick(now);
        if (rotate || stop) writer_.close();
    } catch (const Error& e) {
        spdlog::error("{}", e.what());
    }
}

bool IpfixOutput::starts_new_file(uint64_t have, size_t bytes, int64_t now) const {
    if (writer_.starts_new_file(0, now)) return true;  // none open, or its interval is over
    return max_file_bytes_ && have > 0 && have + bytes > max_file_bytes_;
}

void IpfixOutput::flush(int64_t now) {
    if (pending_.empty()) return;
    uint64_t messages = pending_messages_, records = pending_records_;
    pending_messages_ = pending_records_ = 0;
    size_t bytes = pending_.size();
    try {
        // `now` is the one every check of this batch used: the writer does
        // not rotate under these bytes.
        writer_.write(pending_, now);
    } catch (const Error&) {
        pending_.clear();
        std::lock_guard lock(mu_);
        dropped_ += records;
        throw;
    }
    pending_.clear();  // keeps its capacity: no regrowing (and copying) per batch
    file_bytes_ += bytes;
    std::lock_guard lock(mu_);
    written_ += messages;
}

void IpfixOutput::write_one(const Message& m, int64_t now) {
    if (m.msg.empty()) {
        // the session ended: its templates go (they stay defined in the
        // current file, which is harmless)
        auto mine = [&](const auto& kv) { return std::get<0>(kv.first) == m.session; };
        std::erase_if(templates_, mine);
        std::erase_if(file_ids_, mine);
        return;
    }
    if (m.msg.size() < 16) return;
    // A new file knows no template yet: finish the old one first (with what
    // is pending for it), so that the writer never rotates under a message
    // built for the old file.
    auto new_file = [&] {
        flush(now);
        writer_.close();
        file_ids_.clear();
        next_id_.clear();
        file_seq_.clear();
        writer_.write(std::string(), now);  // opens the next one
        file_bytes_ = 0;
    };
    if (starts_new_file(file_bytes_ + pending_.size(), m.msg.size(), now)) new_file();
    size_t mark = pending_.size();
    build(m, pending_);
    if (starts_new_file(file_bytes_ + mark, pending_.size() - mark, now)) {
        pending_.resize(mark);
        new_file();
        build(m, pending_);  // again, for the new file (templates first)
    }
    ++pending_messages_;
    pending_records_ += m.records;
    if (pending_.size() >= (1u << 20)) flush(now);
}

void IpfixOutput::build(const Message& item, std::string& out) {
    const std::span<const uint8_t> m = item.msg;
    const uint32_t domain = be32(&m[12]);
    const uint32_t export_time = be32(&m[4]);
    auto key = [&](uint16_t tid) { return std::make_tuple(item.session, domain, tid); };
    auto allocate = [&](uint16_t tid) {
        uint32_t& next = next_id_[domain];
        if (next < 256) next = 256;
        if (next > 0xffff) throw Error("ipfix output: more than 65280 templates in one domain of one file");
        uint16_t id = static_cast<uint16_t>(next++);
        file_ids_[key(tid)] = id;
        return id;
    };

    // out gets: context message(s), then the message
    auto header = [&](std::vector<uint8_t>& msg) {
        msg.assign(16, 0);
        set16(&msg[0], 10);
        set32(&msg[4], export_time);
        set32(&msg[8], file_seq_[domain]);
        set32(&msg[12], domain);
    };
    auto finish = [&](std::vector<uint8_t>& msg) {
        set16(&msg[2], static_cast<uint16_t>(msg.size()));
        out.append(reinterpret_cast<const char*>(msg.data()), msg.size());
    };

    // Pass 1: templates this message's data sets need that the file does
    // not have yet (defined in an earlier message of this session, maybe
    // before a rotation) go first, in context messages of their own.
    std::set<uint16_t> defined_here;
    std::vector<uint8_t> ctx;
    std::map<uint16_t, std::vector<uint8_t>> ctx_sets;  // set id -> records
    for (size_t off = 16; off + 4 <= m.size();) {
        uint16_t set_id = be16(&m[off]), len = be16(&m[off + 2]);
        if (len < 4 || off + len > m.size()) break;
        if (set_id == 2 || set_id == 3) {
            for (size_t p = off + 4; p + 4 <= off + len;) {
                size_t rl = template_record_len(&m[p], off + len - p, set_id);
                if (rl == 0) break;
                if (be16(&m[p + 2]) != 0) defined_here.insert(be16(&m[p]));
                p += rl;
            }
        } else if (set_id >= 256 && !defined_here.count(set_id) && !file_ids_.count(key(set_id))) {
            auto t = templates_.find(key(set_id));
            if (t != templates_.end()) {
                std::vector<uint8_t> rec = t->second.second;
                set16(&rec[0], allocate(set_id));
                auto& recs = ctx_sets[t->second.first];
                recs.insert(recs.end(), rec.begin(), rec.end());
            }
        }
        off += len;
    }
    for (auto& [set_id, recs] : ctx_sets) {
        header(ctx);
        ctx.push_back(static_cast<uint8_t>(set_id >> 8));
        ctx.push_back(static_cast<uint8_t>(set_id));
        size_t n = recs.size() + 4;
        if (n + 16 > 65535) throw Error("ipfix output: a session's templates do not fit one message");
        ctx.push_back(static_cast<uint8_t>(n >> 8));
        ctx.push_back(static_cast<uint8_t>(n));
        ctx.insert(ctx.end(), recs.begin(), recs.end());
        finish(ctx);
    }

    // Pass 2: the message itself, template ids renumbered; withdrawals of
    // templates the file does not have are dropped, "withdraw all" becomes
    // the withdrawals of this session's templates (other sessions share
    // the domain in the file).
    // Written straight into `out` from `start` on.
    const size_t start = out.size();
    uint8_t head[16] = {};
    set16(&head[0], 10);
    set32(&head[4], export_time);
    set32(&head[8], file_seq_[domain]);
    set32(&head[12], domain);
    out.append(reinterpret_cast<const char*>(head), sizeof head);
    auto at = [&](size_t pos) { return reinterpret_cast<uint8_t*>(out.data() + pos); };
    auto append = [&](const uint8_t* p, size_t n) { out.append(reinterpret_cast<const char*>(p), n); };
    std::vector<std::pair<uint16_t, uint16_t>> withdraw_after;  // (set id, file id)
    for (size_t off = 16; off + 4 <= m.size();) {
        uint16_t set_id = be16(&m[off]), len = be16(&m[off + 2]);
        if (len < 4 || off + len > m.size()) break;
        size_t set_start = out.size();
        if (set_id == 2 || set_id == 3) {
            append(&m[off], 4);
            for (size_t p = off + 4; p + 4 <= off + len;) {
                size_t rl = template_record_len(&m[p], off + len - p, set_id);
                if (rl == 0) break;
                uint16_t tid = be16(&m[p]), count = be16(&m[p + 2]);
                if (count == 0) {
                    if (tid == set_id) {
                        for (auto it = templates_.begin(); it != templates_.end();) {
                            const auto& [s, d, t] = it->first;
                            if (s == item.session && d == domain && it->second.first == set_id) {
                                if (auto f = file_ids_.find(it->first); f != file_ids_.end()) {
                                    withdraw_after.push_back({set_id, f->second});
                                    file_ids_.erase(f);
                                }
                                it = templates_.erase(it);
                            } else {
                                ++it;
                            }
                        }
                    } else if (auto f = file_ids_.find(key(tid)); f != file_ids_.end()) {
                        size_t pos = out.size();
                        append(&m[p], rl);
                        set16(at(pos), f->second);
                        file_ids_.erase(f);
                        templates_.erase(key(tid));
                    }
                } else {
                    templates_[key(tid)] = {set_id, std::vector<uint8_t>(&m[p], &m[p] + rl)};
                    auto f = file_ids_.find(key(tid));
                    uint16_t id = f != file_ids_.end() ? f->second : allocate(tid);
                    size_t pos = out.size();
                    append(&m[p], rl);
                    set16(at(pos), id);
                }
                p += rl;
            }
            if (out.size() - set_start == 4) {
                out.resize(set_start);  // nothing left in it
            } else {
                set16(at(set_start + 2), static_cast<uint16_t>(out.size() - set_start));
            }
        } else if (set_id >= 256) {
            auto f = file_ids_.find(key(set_id));
            if (f != file_ids_.end()) {
                append(&m[off], len);
                set16(at(set_start), f->second);
            }
        }
        off += len;
    }
    if (out.size() - start > 16) {
        set16(at(start + 2), static_cast<uint16_t>(out.size() - start));
        file_seq_[domain] += static_cast<uint32_t>(item.records);
    } else {
        out.resize(start);
    }
    if (!withdraw_after.empty()) {
        for (uint16_t kind : {2, 3}) {
            std::vector<uint8_t> w;
            header(w);
            w.push_back(0);
            w.push_back(static_cast<uint8_t>(kind));
            w.push_back(0);
            w.push_back(0);
            for (auto [k, id] : withdraw_after) {
                if (k != kind) continue;
                w.push_back(static_cast<uint8_t>(id >> 8));
                w.push_back(static_cast<uint8_t>(id));
                w.push_back(0);
                w.push_back(0);
            }
            if (w.size() == 20) continue;
            set16(&w[18], static_cast<uint16_t>(w.size() - 16));
            finish(w);
        }
    }
}

void IpfixOutput::rotate_now(std::optional<RotationLimits> limits) {
    if (!limits) return worker_.rotate_now();
    worker_.rotate_now([this, l = *limits] {
        writer_.set_limits(l);
        max_file_bytes_ = l.max_bytes;
    });
}

}  // namespace bpfix
