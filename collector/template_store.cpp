#include "template_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "error.h"

namespace bpfix {

namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
           p[3];
}
void put16(std::vector<uint8_t>& v, uint16_t x) {
    v.push_back(static_cast<uint8_t>(x >> 8));
    v.push_back(static_cast<uint8_t>(x));
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
    put16(v, static_cast<uint16_t>(x >> 16));
    put16(v, static_cast<uint16_t>(x));
}

}  // namespace

TemplateStore::TemplateStore(std::string path) : path_(std::move(path)) {}

bool TemplateStore::observe(std::span<const uint8_t> m) {
    if (m.size() < 16 || be16(&m[2]) != m.size()) return false;
    const uint32_t domain = be32(&m[12]);
    // Parse first, apply after: a malformed set teaches nothing.
    struct Change {
        uint16_t set_id, tid;
        std::vector<uint8_t> rec;  // empty: withdrawal
    };
    std::vector<Change> changes;
    size_t off = 16;
    while (off + 4 <= m.size()) {
        uint16_t set_id = be16(&m[off]), set_len = be16(&m[off + 2]);
        if (set_len < 4 || off + set_len > m.size()) return false;
        if (set_id == 2 || set_id == 3) {
            size_t p = off + 4, end = off + set_len;
            const size_t head = set_id == 2 ? 4 : 6;
            while (p + head <= end) {
                uint16_t tid = be16(&m[p]), count = be16(&m[p + 2]);
                if (tid < 256) {
                    if (tid == 2 || tid == 3) {  // withdraw all (RFC 7011 8.1)
                        changes.push_back({set_id, tid, {}});
                        p += 4;
                        continue;
                    }
                    return false;
                }
                if (count == 0) {  // withdrawal of one template
                    changes.push_back({set_id, tid, {}});
                    p += 4;
                    continue;
                }
                size_t q = p + head;
                for (uint16_t i = 0; i < count; ++i) {
                    if (q + 4 > end) return false;
                    q += (m[q] & 0x80) ? 8 : 4;  // enterprise bit: 4 more octets
                }
                if (q > end) return false;
                changes.push_back({set_id, tid, std::vector<uint8_t>(m.begin() + static_cast<long>(p),
                                                                     m.begin() + static_cast<long>(q))});
                p = q;
            }
        }
        off += set_len;
    }
    for (auto& c : changes) {
        if (c.rec.empty()) {
            if (c.tid == 2 || c.tid == 3) {
                std::erase_if(templates_, [&](const auto& kv) {
                    return kv.first.first == domain && kv.second.first == c.set_id;
                });
            } else {
                templates_.erase({domain, c.tid});
            }
            dirty_ = true;
            continue;
        }
        auto& slot = templates_[{domain, c.tid}];
        if (slot.first != c.set_id || slot.second != c.rec) {
            slot = {c.set_id, std::move(c.rec)};
            dirty_ = true;
        }
    }
    return true;
}

void TemplateStore::save_if_changed() {
    if (!dirty_) return;
    // One message per domain: template set, then options template set.
    std::vector<uint8_t> file;
    std::map<uint32_t, std::map<uint16_t, std::vector<const std::vector<uint8_t>*>>> by_domain;
    for (const auto& [k, v] : templates_) by_domain[k.first][v.first].push_back(&v.second);
    for (const auto& [domain, sets] : by_domain) {
        std::vector<uint8_t> msg;
        put16(msg, 10);
        put16(msg, 0);  // length, below
        put32(msg, 0);  // export time
        put32(msg, 0);  // sequence number
        put32(msg, domain);
        for (const auto& [set_id, recs] : sets) {
            size_t start = msg.size();
            put16(msg, set_id);
            put16(msg, 0);
            for (const auto* r : recs) {
                // a set must fit a 16-bit length: start another one
                if (msg.size() - start + r->size() > 65000) {
                    uint16_t len = static_cast<uint16_t>(msg.size() - start);
                    msg[start + 2] = static_cast<uint8_t>(len >> 8), msg[start + 3] = static_cast<uint8_t>(len);
                    start = msg.size();
                    put16(msg, set_id);
                    put16(msg, 0);
                }
                msg.insert(msg.end(), r->begin(), r->end());
            }
            uint16_t len = static_cast<uint16_t>(msg.size() - start);
            msg[start + 2] = static_cast<uint8_t>(len >> 8), msg[start + 3] = static_cast<uint8_t>(len);
        }
        if (msg.size() > 65535) continue;  // more templates than one message holds: not persisted
        msg[2] = static_cast<uint8_t>(msg.size() >> 8), msg[3] = static_cast<uint8_t>(msg.size());
        file.insert(file.end(), msg.begin(), msg.end());
    }
    std::string tmp = path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(fmt::format("cannot write templates to {}: {}", tmp, std::strerror(errno)));
    bool ok = ::write(fd, file.data(), file.size()) == static_cast<ssize_t>(file.size()) && fsync(fd) == 0;
    int e = errno;
    ::close(fd);
    if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0) {
        throw Error(fmt::format("cannot write templates to {}: {}", path_, std::strerror(ok ? errno : e)));
    }
    dirty_ = false;
}

std::vector<std::vector<uint8_t>> TemplateStore::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::vector<uint8_t>> out;
    size_t off = 0;
    while (off + 16 <= data.size()) {
        uint16_t len = be16(&data[off + 2]);
        if (len < 16 || off + len > data.size()) break;
        out.emplace_back(data.begin() + static_cast<long>(off), data.begin() + static_cast<long>(off + len));
        off += len;
    }
    return out;
}

}  // namespace bpfix
