#include "ipfix_decoder.h"

#include <arpa/inet.h>
// fBufRewind: the only way to reset an fBuf left mid-set by an error.
extern "C" {
#include <fixbuf/private.h>
}
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <set>
#include <ctime>
#include <fstream>
#include <memory>
#include <unordered_map>

#include "error.h"
#include "ntp_time.h"

namespace bpfix {

namespace {

constexpr uint16_t kTypeInfoInternal = 0x7fff;

struct Field {
    const fbInfoElement_t* ie;  // the element as in the internal template
    std::string name;
    size_t offset;
    uint16_t len;  // wire length; FB_IE_VARLEN for variable length
};

std::string take_error(GError*& err) {
    std::string msg = err ? err->message : "unknown libfixbuf error";
    g_clear_error(&err);
    return msg;
}

std::string rfc3339(int64_t seconds, uint64_t fraction, int digits) {
    time_t t = static_cast<time_t>(seconds);
    struct tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (digits == 0) {
        return fmt::format("{}Z", buf);
    }
    return fmt::format("{}.{:0{}}Z", buf, fraction, digits);
}

// Integers as libfixbuf leaves them: elements flagged FB_IE_F_ENDIAN are
// converted to host order at whatever width they were sent in (reduced-size
// encoding, RFC 7011 section 6.2); others stay in network order.
uint64_t read_unsigned(const uint8_t* p, size_t len, bool host_order) {
    uint64_t v = 0;
    len = std::min<size_t>(len, 8);
    if (host_order && std::endian::native == std::endian::little) {
        for (size_t i = len; i-- > 0;) v = v << 8 | p[i];
    } else {
        for (size_t i = 0; i < len; ++i) v = v << 8 | p[i];
    }
    return v;
}

int64_t read_signed(const uint8_t* p, size_t len, bool host_order) {
    uint64_t v = read_unsigned(p, len, host_order);
    len = std::min<size_t>(len, 8);
    if (len == 0 || len == 8) return static_cast<int64_t>(v);
    uint64_t sign = uint64_t{1} << (len * 8 - 1);
    return static_cast<int64_t>((v ^ sign) - sign);
}

std::string hex(const uint8_t* p, size_t len) {
    std::string s;
    s.reserve(len * 2);
    for (size_t i = 0; i < len; ++i) s += fmt::format("{:02x}", p[i]);
    return s;
}

// NTP-format timestamps (dateTimeMicroseconds/Nanoseconds) as libfixbuf
// leaves them in memory: seconds since 1900 in the high word.
std::string ntp_time(uint64_t v, bool micro) {
    int64_t secs = static_cast<int64_t>(v >> 32) - 2208988800LL;
    uint64_t frac = v & 0xffffffffULL;
    if (micro) {
        return rfc3339(secs, (frac * 1000000ULL) >> 32, 6);
    }
    return rfc3339(secs, (frac * 1000000000ULL) >> 32, 9);
}

// Template validation guarantees every fixed-size type arrives in a length
// it allows; the length checks here keep a bad length from reading past the
// field all the same.
// A field's value bytes in a record as libfixbuf filled it: in place, or
// behind an fbVarfield_t for variable-length fields; `host`: integers were
// converted to host order.
struct FieldBytes {
    const uint8_t* data;
    size_t len;
    bool host;
};

FieldBytes field_bytes(const Field& f, const uint8_t* rec) {
    FieldBytes b{rec + f.offset, f.len, (f.ie->flags & FB_IE_F_ENDIAN) != 0};
    if (f.len == FB_IE_VARLEN) {
        fbVarfield_t v;
        memcpy(&v, b.data, sizeof v);
        b.data = v.buf;
        b.len = v.len;
    }
    return b;
}

nlohmann::ordered_json value_of(const Field& f, const uint8_t* rec) {
    auto [data, len, host] = field_bytes(f, rec);
    switch (f.ie->type) {
        case FB_UINT_8:
        case FB_UINT_16:
        case FB_UINT_32:
        case FB_UINT_64:
            if (len == 0 || len > 8) break;
            return read_unsigned(data, len, host);
        case FB_INT_8:
        case FB_INT_16:
        case FB_INT_32:
        case FB_INT_64:
            if (len == 0 || len > 8) break;
            return read_signed(data, len, host);
        case FB_FLOAT_32:
        case FB_FLOAT_64:
            if (len == 4) return std::bit_cast<float>(static_cast<uint32_t>(read_unsigned(data, 4, host)));
            if (len == 8) return std::bit_cast<double>(read_unsigned(data, 8, host));
            break;
        case FB_BOOL:
            if (len != 1) break;
            return *data == 1;
        case FB_MAC_ADDR:
            if (len != 6) break;
            return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", data[0], data[1], data[2], data[3],
                               data[4], data[5]);
        case FB_STRING:
            // (an empty variable-length value has no buffer at all)
            if (len == 0) return std::string();
            return std::string(reinterpret_cast<const char*>(data), strnlen(reinterpret_cast<const char*>(data), len));
        case FB_DT_SEC:
            if (len != 4) break;
            return rfc3339(static_cast<int64_t>(read_unsigned(data, len, host)), 0, 0);
        case FB_DT_MILSEC: {
            if (len != 8) break;
            uint64_t ms = read_unsigned(data, len, host);
            return rfc3339(static_cast<int64_t>(ms / 1000), ms % 1000, 3);
        }
        case FB_DT_MICROSEC:
            if (len != 8) break;
            return ntp_time(read_unsigned(data, 8, host), true);
        case FB_DT_NANOSEC:
            if (len != 8) break;
            return ntp_time(read_unsigned(data, 8, host), false);
        case FB_IP4_ADDR: {
            if (len != 4) break;
            uint32_t a = htonl(static_cast<uint32_t>(read_unsigned(data, 4, host)));
            char buf[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &a, buf, sizeof buf);
            return std::string(buf);
        }
        case FB_IP6_ADDR: {
            if (len != 16) break;
            char buf[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, data, buf, sizeof buf);
            return std::string(buf);
        }
        default:
            break;
    }
    return hex(data, len);
}

const char* type_name(uint8_t type) {
    switch (type) {
        case FB_OCTET_ARRAY: return "octetArray";
        case FB_UINT_8: return "unsigned8";
        case FB_UINT_16: return "unsigned16";
        case FB_UINT_32: return "unsigned32";
        case FB_UINT_64: return "unsigned64";
        case FB_INT_8: return "signed8";
        case FB_INT_16: return "signed16";
        case FB_INT_32: return "signed32";
        case FB_INT_64: return "signed64";
        case FB_FLOAT_32: return "float32";
        case FB_FLOAT_64: return "float64";
        case FB_BOOL: return "boolean";
        case FB_MAC_ADDR: return "macAddress";
        case FB_STRING: return "string";
        case FB_DT_SEC: return "dateTimeSeconds";
        case FB_DT_MILSEC: return "dateTimeMilliseconds";
        case FB_DT_MICROSEC: return "dateTimeMicroseconds";
        case FB_DT_NANOSEC: return "dateTimeNanoseconds";
        case FB_IP4_ADDR: return "ipv4Address";
        case FB_IP6_ADDR: return "ipv6Address";
        case FB_BASIC_LIST: return "basicList";
        case FB_SUB_TMPL_LIST: return "subTemplateList";
        case FB_SUB_TMPL_MULTI_LIST: return "subTemplateMultiList";
        default: return "unknown type";
    }
}

// What is wrong with sending an element of this type in `len` octets, or
// empty. Integers may be shorter than their type (reduced-size encoding),
// never longer; float64 may go as float32; other fixed-size types take their
// size exactly; only strings, octet arrays and lists may be variable-length.
std::string length_problem(uint8_t type, uint16_t len) {
    if (len == 0) {
        return "length 0 is invalid";
    }
    uint16_t max = 0;
    bool exact = true;
    switch (type) {
        case FB_UINT_8: case FB_INT_8: case FB_BOOL: max = 1; exact = type == FB_BOOL; break;
        case FB_UINT_16: case FB_INT_16: max = 2; exact = false; break;
        case FB_UINT_32: case FB_INT_32: max = 4; exact = false; break;
        case FB_UINT_64: case FB_INT_64: max = 8; exact = false; break;
        case FB_FLOAT_32: case FB_DT_SEC: case FB_IP4_ADDR: max = 4; break;
        case FB_FLOAT_64: max = 8; break;
        case FB_MAC_ADDR: max = 6; break;
        case FB_DT_MILSEC: case FB_DT_MICROSEC: case FB_DT_NANOSEC: max = 8; break;
        case FB_IP6_ADDR: max = 16; break;
        default: return {};  // strings, octet arrays, lists, unknown types: any length
    }
    if (len == FB_IE_VARLEN) {
        return fmt::format("variable length is invalid ({} is fixed-size)", type_name(type));
    }
    bool ok = exact ? (len == max || (type == FB_FLOAT_64 && len == 4)) : len <= max;
    if (!ok) {
        return fmt::format("length {} is invalid ({} takes {}{} octets)", len, type_name(type),
                           exact ? "" : "1 to ", type == FB_FLOAT_64 ? std::string("4 or 8") : std::to_string(max));
    }
    return {};
}

uint16_t get_u16(std::span<const uint8_t> m, size_t off) {
    return static_cast<uint16_t>(m[off] << 8 | m[off + 1]);
}

uint32_t get_u32(std::span<const uint8_t> m, size_t off) {
    return static_cast<uint32_t>(get_u16(m, off)) << 16 | get_u16(m, off + 2);
}

bool is_list(const fbInfoElement_t* ie) {
    return ie->type == FB_BASIC_LIST || ie->type == FB_SUB_TMPL_LIST || ie->type == FB_SUB_TMPL_MULTI_LIST;
}

}  // namespace

struct IpfixDecoder::TemplateInfo {
    IpfixDecoder* decoder;
    uint16_t external_id;
    uint16_t internal_id;
    bool options;
    bool type_info;
    bool has_lists;
    bool repeats = false;  // an element appears twice: values become arrays (generic path)
    // Packet reports: indexes into `fields` of the IANA elements read (-1:
    // absent); `frame` >= 0 makes the template one of packet reports.
    int frame = -1, frame_size = -1, time_ns = -1, time_us = -1, time_ms = -1, in_if = -1, out_if = -1,
        direction = -1;
    fbTemplate_t* internal;
    std::vector<Field> fields;
    std::vector<std::string> keys;  // "name": per field, JSON-escaped, for the JSONL path
};

namespace {

// JSON string contents: quotes, backslashes and control characters
// escaped; bytes that are not valid UTF-8 become U+FFFD, as the generic
// path (nlohmann, error_handler replace) does.
void json_escape(std::string& out, const char* s, size_t n) {
    static const char hexd[] = "0123456789abcdef";
    const auto* p = reinterpret_cast<const unsigned char*>(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c == '"' || c == '\\') {
                out += '\\';
                out += static_cast<char>(c);
            } else if (c < 0x20) {
                switch (c) {
                    case '\b': out += "\\b"; break;
                    case '\f': out += "\\f"; break;
                    case '\n': out += "\\n"; break;
                    case '\r': out += "\\r"; break;
                    case '\t': out += "\\t"; break;
                    default:
                        out += "\\u00";
                        out += hexd[c >> 4];
                        out += hexd[c & 15];
                }
            } else {
                out += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        // a multi-byte sequence: its length from the lead byte, then
        // continuation bytes, no overlongs, no surrogates, <= U+10FFFF
        size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = len != 0 && i + len <= n;
        uint32_t cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; ok && k < len; ++k) {
            ok = (p[i + k] & 0xc0) == 0x80;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (ok) {
            ok = (len == 2 && cp >= 0x80) || (len == 3 && cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff)) ||
                 (len == 4 && cp >= 0x10000 && cp <= 0x10ffff);
        }
        if (ok) {
            out.append(s + i, len);
            i += len;
        } else {
            out += "\xef\xbf\xbd";
            ++i;
        }
    }
}

template <typename T>
void append_number(std::string& out, T v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

}  // namespace

void IpfixDecoder::set_jsonl_output(std::string* out, JsonlTail tail) {
    jsonl_ = out;
    jsonl_tail_ = std::move(tail);
}

// One record as a JSON line; value forms as value_of() gives them.
void IpfixDecoder::append_jsonl(const TemplateInfo& info, uint32_t domain) {
    std::string& out = *jsonl_;
    const uint8_t* rec = record_.data();
    out += '{';
    bool first = true;
    auto stamp = [&](int64_t secs) {
        if (secs != cached_second_) {
            cached_second_ = secs;
            time_t t = static_cast<time_t>(secs);
            struct tm tm{};
            gmtime_r(&t, &tm);
            strftime(cached_text_, sizeof cached_text_, "%Y-%m-%dT%H:%M:%S", &tm);
        }
        out += '"';
        out += cached_text_;
    };
    auto fraction = [&](uint64_t frac, int digits) {
        char buf[16];
        for (int d = digits - 1; d >= 0; --d, frac /= 10) buf[d] = static_cast<char>('0' + frac % 10);
        out += '.';
        out.append(buf, static_cast<size_t>(digits));
        out += "Z\"";
    };
    for (size_t i = 0; i < info.fields.size(); ++i) {
        const Field& f = info.fields[i];
        if (is_list(f.ie)) continue;
        if (!first) out += ',';
        first = false;
        out += info.keys[i];
        auto [data, len, host] = field_bytes(f, rec);
        switch (f.ie->type) {
            case FB_UINT_8:
            case FB_UINT_16:
            case FB_UINT_32:
            case FB_UINT_64:
                if (len == 0 || len > 8) break;
                append_number(out, read_unsigned(data, len, host));
                continue;
            case FB_INT_8:
            case FB_INT_16:
            case FB_INT_32:
            case FB_INT_64:
                if (len == 0 || len > 8) break;
                append_number(out, read_signed(data, len, host));
                continue;
            case FB_IP4_ADDR: {
                if (len != 4) break;
                // dotted quad by hand: inet_ntop goes through sprintf
                uint32_t a = static_cast<uint32_t>(read_unsigned(data, 4, host));
                char buf[18];
                char* q = buf;
                *q++ = '"';
                for (int shift = 24; shift >= 0; shift -= 8) {
                    unsigned o = (a >> shift) & 0xff;
                    if (o >= 100) *q++ = static_cast<char>('0' + o / 100);
                    if (o >= 10) *q++ = static_cast<char>('0' + o / 10 % 10);
                    *q++ = static_cast<char>('0' + o % 10);
                    *q++ = shift ? '.' : '"';
                }
                out.append(buf, static_cast<size_t>(q - buf));
                continue;
            }
            case FB_IP6_ADDR: {
                if (len != 16) break;
                char buf[INET6_ADDRSTRLEN];
                inet_ntop(AF_INET6, data, buf, sizeof buf);
                out += '"';
                out += buf;
                out += '"';
                continue;
            }
            case FB_DT_MILSEC: {
                if (len != 8) break;
                uint64_t ms = read_unsigned(data, len, host);
                stamp(static_cast<int64_t>(ms / 1000));
                fraction(ms % 1000, 3);
                continue;
            }
            case FB_DT_SEC:
                if (len != 4) break;
                stamp(static_cast<int64_t>(read_unsigned(data, len, host)));
                out += "Z\"";
                continue;
            case FB_DT_MICROSEC:
            case FB_DT_NANOSEC: {
                if (len != 8) break;
                uint64_t v = read_unsigned(data, 8, host);
                stamp(static_cast<int64_t>(v >> 32) - 2208988800LL);
                uint64_t frac = v & 0xffffffffULL;
                if (f.ie->type == FB_DT_MICROSEC) {
                    fraction((frac * 1000000ULL) >> 32, 6);
                } else {
                    fraction((frac * 1000000000ULL) >> 32, 9);
                }
                continue;
            }
            case FB_STRING:
                out += '"';
                if (len) json_escape(out, reinterpret_cast<const char*>(data), strnlen(reinterpret_cast<const char*>(data), len));
                out += '"';
                continue;
            default:
                break;
        }
        // everything else (floats, booleans, MACs, octet arrays, and any
        // length the cases above refused): as the generic path writes it
        out += value_of(f, rec).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    }
    if (jsonl_tail_) {
        if (!first) out += ',';
        jsonl_tail_(out, domain, info.external_id);
    }
    out += "}\n";
}

IpfixDecoder::IpfixDecoder(InfoModel& model, Sink sink) : model_(model), sink_(std::move(sink)) {
    session_ = fbSessionAlloc(model_.get());
    fbSessionAddNewTemplateCallback(session_, &IpfixDecoder::on_new_template, this);
    GError* err = nullptr;
    fbTemplate_t* type_tmpl = fbInfoElementAllocTypeTemplate(model_.get(), &err);
    if (!type_tmpl || !fbSessionAddTemplate(session_, TRUE, kTypeInfoInternal, type_tmpl, &err)) {
        throw Error("cannot set up the RFC 5610 type-record template: " + take_error(err));
    }
    fbuf_ = fBufAllocForCollection(session_, nullptr);
    fBufSetAutomaticMode(fbuf_, FALSE);
}

IpfixDecoder::~IpfixDecoder() {
    if (fbuf_) {
        fBufFree(fbuf_);
    }
}

void IpfixDecoder::on_new_template(fbSession_t* session, uint16_t tid, fbTemplate_t* tmpl, void* app_ctx,
                                   void** tmpl_ctx, fbTemplateCtxFree_fn* free_fn) {
    auto* self = static_cast<IpfixDecoder*>(app_ctx);
    uint32_t count = fbTemplateCountElements(tmpl);
    if (count == 0) {
        return;  // a withdrawal: libfixbuf drops the template itself
    }
    auto info = std::make_unique<TemplateInfo>();
    info->decoder = self;
    info->external_id = tid;
    info->options = fbTemplateGetOptionsScope(tmpl) > 0;
    info->type_info = fbInfoModelTypeInfoRecord(tmpl);
    info->has_lists = false;
    info->internal = nullptr;
    if (!info->type_info) {
        GError* err = nullptr;
        fbTemplate_t* internal = fbTemplateAlloc(self->model_.get());
        size_t offset = 0;
        for (uint32_t i = 0; i < count; ++i) {
            fbInfoElement_t* ie = fbTemplateGetIndexedIE(tmpl, i);
            // Append a bare specifier (number, enterprise, length), as read
            // off the wire: the template's own element carries libfixbuf's
            // bookkeeping for repeated elements, and appending a repeated
            // one as is crashed fbTemplateAppend.
            fbInfoElement_t spec{};
            spec.num = ie->num;
            spec.ent = ie->ent;
            spec.len = ie->len;
            if (!fbTemplateAppend(internal, &spec, &err)) {
                spdlog::warn("template {}: cannot map element {}: {}", tid, i, take_error(err));
                fbTemplateFreeUnused(internal);
                return;
            }
            const fbInfoElement_t* mine = fbTemplateGetIndexedIE(internal, i);
            Field f{mine, mine->ref.canon ? mine->ref.canon->ref.name : "unknown", offset, ie->len};
            if (f.name == "_alienInformationElement" || f.name.empty()) {
                f.name = fmt::format("e{}id{}", ie->ent, ie->num);
            }
            if (is_list(mine)) {
                info->has_lists = true;
                offset += mine->type == FB_BASIC_LIST      ? sizeof(fbBasicList_t)
                          : mine->type == FB_SUB_TMPL_LIST ? sizeof(fbSubTemplateList_t)
                                                           : sizeof(fbSubTemplateMultiList_t);
            } else {
                offset += ie->len == FB_IE_VARLEN ? sizeof(fbVarfield_t) : ie->len;
            }
            info->fields.push_back(std::move(f));
        }
        for (size_t i = 0; i < info->fields.size(); ++i) {
            const fbInfoElement_t* ie = info->fields[i].ie;
            if (ie->ent != 0) continue;
            int idx = static_cast<int>(i);
            switch (ie->num) {
                case 315: info->frame = idx; break;       // dataLinkFrameSection
                case 312: info->frame_size = idx; break;  // dataLinkFrameSize
                case 325: info->time_ns = idx; break;     // observationTimeNanoseconds
                case 324: info->time_us = idx; break;     // observationTimeMicroseconds
                case 323: info->time_ms = idx; break;     // observationTimeMilliseconds
                case 10: info->in_if = idx; break;        // ingressInterface
                case 14: info->out_if = idx; break;       // egressInterface
                case 61: info->direction = idx; break;    // flowDirection
                default: break;
            }
        }
        std::set<std::string> names;
        for (const Field& f : info->fields) {
            info->repeats = info->repeats || !names.insert(f.name).second;
            std::string key = "\"";
            json_escape(key, f.name.data(), f.name.size());
            info->keys.push_back(key + "\":");
        }
        if (offset != fbTemplateGetIELenOfMemBuffer(internal)) {
            spdlog::warn("template {}: record layout mismatch ({} vs {} bytes); not decoded", tid, offset,
                         fbTemplateGetIELenOfMemBuffer(internal));
            fbTemplateFreeUnused(internal);
            return;
        }
        // Internal template ids are session-wide, not per domain: each
        // external template gets its own.
        info->internal_id = self->next_internal_id_++;
        if (self->next_internal_id_ == 0) self->next_internal_id_ = 0x8000;
        fbSessionRemoveTemplate(session, TRUE, info->internal_id, nullptr);
        if (!fbSessionAddTemplate(session, TRUE, info->internal_id, internal, &err)) {
            spdlog::warn("template {}: {}", tid, take_error(err));
            return;
        }
        info->internal = internal;
    } else {
        info->internal_id = kTypeInfoInternal;
    }
    *tmpl_ctx = info.release();
    *free_fn = [](void* ctx, void*) { delete static_cast<TemplateInfo*>(ctx); };
}

void IpfixDecoder::deliver_packet(const TemplateInfo& info, uint32_t domain) {
    const uint8_t* rec = record_.data();
    auto number = [&](int idx) -> uint64_t {
        if (idx < 0) return 0;
        auto [data, len, host] = field_bytes(info.fields[static_cast<size_t>(idx)], rec);
        return len >= 1 && len <= 8 ? read_unsigned(data, len, host) : 0;
    };
    DecodedPacket p;
    p.observation_domain = domain;
    p.template_id = info.external_id;
    auto [data, len, host] = field_bytes(info.fields[static_cast<size_t>(info.frame)], rec);
    p.frame = std::span<const uint8_t>(data, len);
    // dateTimeMicro/Nanoseconds are NTP timestamps (RFC 7011 section 6.1.9)
    if (info.time_ns >= 0) {
        p.ts_ns = unix_ns_from_ntp(number(info.time_ns));
    } else if (info.time_us >= 0) {
        p.ts_ns = unix_ns_from_ntp(number(info.time_us)) / 1000 * 1000;
    } else if (info.time_ms >= 0) {
        p.ts_ns = number(info.time_ms) * 1'000'000ULL;
    }
    p.orig_len = info.frame_size >= 0 ? static_cast<uint32_t>(number(info.frame_size)) : static_cast<uint32_t>(len);
    if (p.orig_len < len) p.orig_len = static_cast<uint32_t>(len);
    p.direction = static_cast<uint8_t>(number(info.direction));
    p.ifindex = static_cast<uint32_t>(p.direction == 1 && info.out_if >= 0 ? number(info.out_if) : number(info.in_if));
    if (p.ifindex == 0 && info.out_if >= 0) p.ifindex = static_cast<uint32_t>(number(info.out_if));
    packet_sink_(p);
}

void IpfixDecoder::decode_record(const TemplateInfo& info, uint32_t domain) {
    if (packet_sink_ && info.frame >= 0) {
        ++records_;
        ++packets_;
        deliver_packet(info, domain);
        return;
    }
    if (count_only_) {
        ++records_;
        return;
    }
    if (jsonl_ && !info.repeats) {
        ++records_;
        append_jsonl(info, domain);
        return;
    }
    DecodedRecord out;
    out.observation_domain = domain;
    out.template_id = info.external_id;
    out.options = info.options;
    const uint8_t* rec = record_.data();
    for (const Field& f : info.fields) {
        if (is_list(f.ie)) {
            continue;  // structured data (RFC 6313) is not decoded yet
        }
        auto value = value_of(f, rec);
        auto it = out.fields.find(f.name);
        if (it == out.fields.end()) {
            out.fields[f.name] = std::move(value);
        } else if (it->is_array()) {
            it->push_back(std::move(value));
        } else {
            // A repeated element (RFC 7011 section 3.4.1 allows it): all its
            // values, in template order.
            *it = nlohmann::ordered_json::array({std::move(*it), std::move(value)});
        }
    }
    ++records_;
    sink_(out);
}

namespace {

std::string varfield_text(const fbVarfield_t& v) {
    return v.buf ? std::string(reinterpret_cast<const char*>(v.buf), v.len) : std::string();
}

}  // namespace

struct IpfixDecoder::Screen {
    IpfixDecoder& dec;
    std::span<const uint8_t> msg;
    // Templates (re)defined or withdrawn (nullopt) earlier in this message.
    std::unordered_map<uint16_t, std::optional<WireShape>> defined;
    WireShape scratch;  // a shape not cached (templates withdrawn earlier in this message)
    bool withdrew_all[2] = {false, false};  // every template, every options template
    // Templates the "withdraw all" records remove: libfixbuf refuses those
    // records (template id 2 or 3), so they are taken out of the message
    // (`rewritten`: the template sets without them, by offset) and the
    // templates removed from its session here.
    std::vector<uint16_t> withdraw_from_session;
    std::map<size_t, std::vector<uint8_t>> rewritten;
    bool any_withdraw_all() const { return withdrew_all[0] || withdrew_all[1]; }
    bool has_templates = false;  // template records libfixbuf must see (not refreshes)
    size_t records = 0;          // data records in the sets accepted

    uint32_t domain() const { return get_u32(msg, 12); }

    static WireShape shape_of(std::vector<uint16_t> lengths) {
        WireShape shape;
        for (uint16_t len : lengths) {
            shape.fixed = shape.fixed && len != FB_IE_VARLEN;
            shape.min_len += len == FB_IE_VARLEN ? 1 : len;
        }
        shape.lengths = std::move(lengths);
        return shape;
    }

    // The shape data set `tid` follows, or nullptr when there is no such
    // template.
    const WireShape* lookup(uint16_t tid) {
        if (auto it = defined.find(tid); it != defined.end()) {
            return it->second ? &*it->second : nullptr;
        }
        auto key = std::make_pair(domain(), tid);
        if (!any_withdraw_all()) {
            if (auto it = dec.shapes_.find(key); it != dec.shapes_.end()) return &it->second;
        }
        GError* err = nullptr;
        fbTemplate_t* t = fbSessionGetTemplate(dec.session_, FALSE, tid, &err);
        g_clear_error(&err);
        if (!t || fbTemplateCountElements(t) == 0) {
            return nullptr;
        }
        if (withdrew_all[fbTemplateGetOptionsScope(t) > 0 ? 1 : 0]) {
            return nullptr;
        }
        std::vector<uint16_t> lengths;
        for (uint32_t i = 0; i < fbTemplateCountElements(t); ++i) {
            lengths.push_back(fbTemplateGetIndexedIE(t, i)->len);
        }
        if (!any_withdraw_all()) return &(dec.shapes_[key] = shape_of(std::move(lengths)));
        scratch = shape_of(std::move(lengths));
        return &scratch;
    }

    std::string template_set(std::span<const uint8_t> set, size_t off, uint16_t set_id) {
        const char* kind = set_id == 3 ? "options template" : "template";
        // Once a record changes the session's templates, shapes are looked
        // up afresh (the session has them after libfixbuf took this message).
        auto changes = [&] { dec.shapes_.clear(); };
        size_t p = 4;
        // The set without "withdraw all" records, for libfixbuf (only
        // stored when it differs).
        std::vector<uint8_t> kept(set.begin(), set.begin() + 4);
        bool dropped_record = false;
        size_t rec_start = p;
        auto keep_record = [&] {
            has_templates = true;
            kept.insert(kept.end(), set.begin() + static_cast<std::ptrdiff_t>(rec_start),
                        set.begin() + static_cast<std::ptrdiff_t>(p));
        };
        // Fewer than 4 bytes left is padding (RFC 7011 section 3.3.1).
        for (; set.size() - p >= 4; rec_start = p) {
            uint16_t tid = get_u16(set, p);
            uint16_t count = get_u16(set, p + 2);
            p += 4;
            if (count == 0) {
                // A withdrawal (RFC 7011 section 8.1); the set's own id
                // withdraws every template of its kind.
                if (tid == set_id) {
                    changes();
                    withdrew_all[set_id == 3 ? 1 : 0] = true;
                    dropped_record = true;
                    for (auto& [id, t] : defined) t.reset();
                    for (const auto& [k, known] : dec.known_templates_) {
                        if (k.first == domain() && known.set_id == set_id) withdraw_from_session.push_back(k.second);
                    }
                    std::erase_if(dec.known_templates_, [&](const auto& kv) {
                        return kv.first.first == domain() && kv.second.set_id == set_id;
                    });
                    continue;
                }
                if (tid < 256) {
                    return fmt::format("{} set at offset {}: withdrawal of reserved template id {}", kind, off, tid);
                }
                changes();
                if (!lookup(tid)) {
                    // Section 8.1: ignore it, and log it.
                    spdlog::warn("{} set at offset {}: withdrawal of unknown template {} ignored", kind, off, tid);
                }
                defined[tid] = std::nullopt;
                dec.known_templates_.erase({domain(), tid});
                keep_record();
                continue;
            }
            if (tid < 256) {
                return fmt::format("{} set at offset {}: template id {} is reserved (< 256)", kind, off, tid);
            }
            if (set_id == 3) {
                if (set.size() - p < 2) {
                    return fmt::format("options template {}: scope count runs past the set end", tid);
                }
                uint16_t scope = get_u16(set, p);
                p += 2;
                if (scope == 0) {
                    return fmt::format("options template {}: scope count 0 (at least one scope field is required)",
                                       tid);
                }
                if (scope > count) {
                    return fmt::format("options template {}: scope count {} exceeds its {} fields", tid, scope, count);
                }
            }
            std::vector<uint16_t> lengths;
            for (uint32_t i = 1; i <= count; ++i) {
                if (set.size() - p < 4) {
                    return fmt::format("{} {} field {}: field specifier runs past the set end", kind, tid, i);
                }
                uint16_t id = get_u16(set, p);
                uint16_t len = get_u16(set, p + 2);
                p += 4;
                uint32_t pen = 0;
                if (id & 0x8000) {
                    if (set.size() - p < 4) {
                        return fmt::format("{} {} field {}: enterprise-specific field specifier runs past the set end",
                                           kind, tid, i);
                    }
                    pen = get_u32(set, p);
                    p += 4;
                    id &= 0x7fff;
                }
                const fbInfoElement_t* ie = fbInfoModelGetElementByID(dec.model_.get(), id, pen);
                // Unknown elements become octet arrays: any length but 0.
                std::string problem = ie ? length_problem(ie->type, len) : len == 0 ? "length 0 is invalid" : "";
                if (!problem.empty()) {
                    return fmt::format("{} {} field {} ({}, {}): {}", kind, tid, i,
                                       ie ? ie->ref.name : fmt::format("{}/{}", pen, id),
                                       ie ? type_name(ie->type) : "octetArray", problem);
                }
                lengths.push_back(len);
            }
            // Memory stays bounded under a flood of templates: a session
            // holds at most max_templates (all domains together).
            auto key = std::make_pair(domain(), tid);
            if (dec.max_templates_ && !dec.known_templates_.count(key) &&
                dec.known_templates_.size() >= dec.max_templates_) {
                ++dec.template_limit_hits_;
                return fmt::format("{} {}: this session already holds {} templates, the limit (max_templates)", kind,
                                   tid, dec.max_templates_);
            }
            if (dec.lifetime_.count()) dec.template_seen_[key] = dec.now_;
            auto record = set.subspan(rec_start, p - rec_start);
            auto known = dec.known_templates_.find(key);
            if (known != dec.known_templates_.end() && known->second.set_id == set_id &&
                std::ranges::equal(known->second.record, record)) {
                // A refresh: the session has this template already.
                defined[tid] = shape_of(std::move(lengths));
                dropped_record = true;
                continue;
            }
            changes();
            dec.known_templates_[key] = {set_id, std::vector<uint8_t>(record.begin(), record.end())};
            defined[tid] = shape_of(std::move(lengths));
            keep_record();
        }
        if (dropped_record) {
            kept[2] = static_cast<uint8_t>(kept.size() >> 8);
            kept[3] = static_cast<uint8_t>(kept.size());
            rewritten[off] = std::move(kept);
        }
        return {};
    }

    // Every record must end inside the set: libfixbuf checks variable
    // lengths too, but cannot say where.
    static std::string data_set(std::span<const uint8_t> set, size_t off, uint16_t tid, const WireShape& shape,
                                size_t& records) {
        const size_t min = shape.min_len;
        const auto& lengths = shape.lengths;
        if (min == 0) {
            return fmt::format("set {} at offset {}: template {} has no fields", tid, off, tid);
        }
        if (shape.fixed) {
            // Every record is min long; fewer bytes than that are padding.
            records += (set.size() - 4) / min;
            return {};
        }
        size_t p = 4;
        // Fewer bytes than the shortest record are padding.
        for (size_t rec = 1; set.size() - p >= min; ++rec, ++records) {
            for (size_t i = 0; i < lengths.size(); ++i) {
                size_t len = lengths[i];
                if (len == FB_IE_VARLEN) {
                    if (set.size() - p < 1) {
                        return fmt::format("set {} at offset {}: record {} field {}: variable-length prefix runs past "
                                           "the set end", tid, off, rec, i + 1);
                    }
                    len = set[p++];
                    if (len == 255) {
                        if (set.size() - p < 2) {
                            return fmt::format("set {} at offset {}: record {} field {}: 3-byte variable-length "
                                               "prefix runs past the set end", tid, off, rec, i + 1);
                        }
                        len = get_u16(set, p);
                        p += 2;
                    }
                }
                if (set.size() - p < len) {
                    return fmt::format("set {} at offset {}: record {} field {}: {} bytes runs past the set end ({} "
                                       "left)", tid, off, rec, i + 1, len, set.size() - p);
                }
                p += len;
            }
        }
        return {};
    }

    // Notes in dec.kept_sets_ each set libfixbuf should see, up to the first
    // problem, which it returns.
    std::string run() {
        dec.kept_sets_.clear();
        size_t off = 16;
        while (off < msg.size()) {
            size_t rest = msg.size() - off;
            if (rest < 4) {
                return fmt::format("{} bytes after the last set (offset {}) are too short for a set header", rest, off);
            }
            uint16_t set_id = get_u16(msg, off);
            uint16_t set_len = get_u16(msg, off + 2);
            if (set_len < 4) {
                return fmt::format("set {} at offset {}: length {} is shorter than its 4-byte header", set_id, off,
                                   set_len);
            }
            if (set_len > rest) {
                return fmt::format("set {} at offset {}: length {} runs past the message end ({} bytes left)", set_id,
                                   off, set_len, rest);
            }
            auto set = msg.subspan(off, set_len);
            bool keep = true;
            std::string problem;
            if (set_id == 2 || set_id == 3) {
                problem = template_set(set, off, set_id);
            } else if (set_id < 2) {
                problem = fmt::format("set {} at offset {}: set ids 0 and 1 are NetFlow v9's, not IPFIX", set_id, off);
            } else if (set_id < 256) {
                // Reserved for future use (RFC 7011 section 3.3.2): the length
                // still frames it, so skip it and decode the rest.
                spdlog::debug("set {} at offset {}: reserved set id, skipped", set_id, off);
                ++dec.skipped_sets_;
                keep = false;
            } else if (const WireShape* shape = lookup(set_id)) {
                size_t n = 0;
                problem = data_set(set, off, set_id, *shape, n);
                if (problem.empty()) records += n;
            } else {
                spdlog::debug("set {} at offset {}: no template {} in domain {}, not decoded", set_id, off, set_id,
                              get_u32(msg, 12));
                ++dec.unknown_template_sets_;
                dec.last_unknown_template_ = set_id;
                keep = false;
            }
            if (!problem.empty()) {
                return problem;
            }
            if (keep) {
                dec.kept_sets_.emplace_back(off, set_len);
            }
            off += set_len;
        }
        return {};
    }
};

std::string IpfixDecoder::decode_message(std::span<const uint8_t> message,
                                         std::optional<std::chrono::steady_clock::time_point> now) {
    if (message.size() < 16) {
        ++malformed_;
        return fmt::format("message of {} bytes is shorter than the 16-byte IPFIX header", message.size());
    }
    uint16_t version = get_u16(message, 0);
    uint16_t length = get_u16(message, 2);
    if (version != 10) {
        ++malformed_;
        return fmt::format("version {} is not IPFIX (10)", version);
    }
    if (length < 16) {
        ++malformed_;
        return fmt::format("header length {} is shorter than the 16-byte IPFIX header", length);
    }
    if (length != message.size()) {
        ++malformed_;
        return fmt::format("header length {} does not match the {} bytes received", length, message.size());
    }
    uint32_t domain = get_u32(message, 12);
    ++messages_;
    // libfixbuf trusts some lengths and errs on sets it could skip: screen
    // the message first and hand libfixbuf only the sets it should decode,
    // up to the first problem (records before it are still delivered).
    // Templates are per domain: look them up in this message's.
    if (lifetime_.count()) {
        now_ = now ? *now : std::chrono::steady_clock::now();
        if (now_ >= next_expiry_check_) {
            expire_templates(now_);
            next_expiry_check_ = now_ + std::chrono::seconds(1);
        }
    }
    fbSessionSetDomain(session_, domain);
    Screen screen{*this, message, {}, {}, {false, false}, {}, {}, false, 0};
    std::string problem = screen.run();
    for (uint16_t tid : screen.withdraw_from_session) {
        // (A template defined earlier in the same message and withdrawn by
        // the same "withdraw all" is re-added by libfixbuf below: exporters
        // withdraw before they redefine, not after.)
        fbSessionRemoveTemplate(session_, FALSE, tid, nullptr);
    }
    if (count_only_ && problem.empty() && !screen.has_templates) {
        // Only data sets of known templates, all screened record by
        // record: the count is known without libfixbuf decoding them.
        records_ += screen.records;
        return {};
    }
    std::vector<uint8_t> accepted(message.begin(), message.begin() + 16);
    for (auto [off, len] : kept_sets_) {
        if (auto r = screen.rewritten.find(off); r != screen.rewritten.end()) {
            if (r->second.size() > 4) accepted.insert(accepted.end(), r->second.begin(), r->second.end());
            continue;
        }
        accepted.insert(accepted.end(), message.begin() + static_cast<ptrdiff_t>(off),
                        message.begin() + static_cast<ptrdiff_t>(off + len));
    }
    if (accepted.size() > 16) {
        accepted[2] = static_cast<uint8_t>(accepted.size() >> 8);
        accepted[3] = static_cast<uint8_t>(accepted.size());
        std::string fb_problem = decode_screened(accepted, domain);
        if (problem.empty()) {
            problem = std::move(fb_problem);
        }
    }
    if (!problem.empty()) {
        ++malformed_;
    }
    return problem;
}

size_t IpfixDecoder::expire_templates(std::chrono::steady_clock::time_point now) {
    if (!lifetime_.count()) return 0;
    size_t n = 0;
    for (auto it = template_seen_.begin(); it != template_seen_.end();) {
        auto known = known_templates_.find(it->first);
        if (known == known_templates_.end()) {
            it = template_seen_.erase(it);  // withdrawn meanwhile
            continue;
        }
        if (now - it->second <= lifetime_) {
            ++it;
            continue;
        }
        const auto [domain, tid] = it->first;
        fbSessionSetDomain(session_, domain);
        fbSessionRemoveTemplate(session_, FALSE, tid, nullptr);
        spdlog::info("template {} of observation domain {} expired: not received again within {} s", tid, domain,
                     lifetime_.count());
        known_templates_.erase(known);
        shapes_.clear();
        it = template_seen_.erase(it);
        ++n;
    }
    templates_expired_ += n;
    return n;
}

std::string IpfixDecoder::decode_screened(std::vector<uint8_t>& message, uint32_t domain) {
    GError* err = nullptr;
    // An error leaves the fBuf pointing into the last (freed) message, mid-set;
    // rewinding forgets that.
    fBufRewind(fbuf_);
    fBufSetBuffer(fbuf_, message.data(), message.size());
    auto fail = [&](std::string what) {
        g_clear_error(&err);
        fBufRewind(fbuf_);
        return what;
    };
    for (;;) {
        uint16_t ext_tid = 0;
        fbTemplate_t* ext = fBufNextCollectionTemplate(fbuf_, &ext_tid, &err);
        if (!ext) {
            if (err && err->domain == FB_ERROR_DOMAIN &&
                (err->code == FB_ERROR_EOM || err->code == FB_ERROR_BUFSZ || err->code == FB_ERROR_EOF)) {
                return fail({});
            }
            return fail(take_error(err));
        }
        auto* info = static_cast<TemplateInfo*>(fbTemplateGetContext(ext));
        if (!info) {
            return fail(fmt::format("data set {}: its template could not be mapped (see the log)", ext_tid));
        }
        if (!fBufSetInternalTemplate(fbuf_, info->internal_id, &err)) {
            return fail(fmt::format("data set {}: {}", ext_tid, take_error(err)));
        }
        if (info->type_info) {
            fbInfoElementOptRec_t opt{};
            size_t len = sizeof opt;
            if (!fBufNext(fbuf_, reinterpret_cast<uint8_t*>(&opt), &len, &err)) {
                return fail(fmt::format("data set {}: {}", ext_tid, take_error(err)));
            }
            fbInfoElementAddOptRecElement(model_.get(), &opt);
            DecodedRecord out;
            out.observation_domain = domain;
            out.template_id = info->external_id;
            out.options = true;
            out.fields["informationElementId"] = opt.ie_id;
            out.fields["privateEnterpriseNumber"] = opt.ie_pen;
            out.fields["informationElementDataType"] = opt.ie_type;
            out.fields["informationElementSemantics"] = opt.ie_semantic;
            out.fields["informationElementUnits"] = opt.ie_units;
            out.fields["informationElementName"] = varfield_text(opt.ie_name);
            out.fields["informationElementDescription"] = varfield_text(opt.ie_desc);
            ++records_;
            sink_(out);
            continue;
        }
        size_t len = fbTemplateGetIELenOfMemBuffer(info->internal);
        record_.assign(len, 0);
        if (!fBufNext(fbuf_, record_.data(), &len, &err)) {
            return fail(fmt::format("data set {}: {}", ext_tid, take_error(err)));
        }
        decode_record(*info, domain);
        if (info->has_lists) {
            fBufListFree(info->internal, record_.data());
        }
    }
}

std::optional<size_t> ipfix_message_length(std::span<const uint8_t> buf, std::string& error) {
    error.clear();
    if (buf.size() >= 2 && get_u16(buf, 0) != 10) {
        error = fmt::format("version {} is not IPFIX (10): the stream is not at an IPFIX message header",
                            get_u16(buf, 0));
        return std::nullopt;
    }
    if (buf.size() < 4) {
        return std::nullopt;
    }
    uint16_t len = get_u16(buf, 2);
    if (len < 16) {
        error = fmt::format("IPFIX message header claims length {} (< 16 bytes)", len);
        return std::nullopt;
    }
    if (buf.size() < len) {
        return std::nullopt;
    }
    return len;
}

void read_ipfix_file(const std::string& path, IpfixDecoder& decoder) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw Error(fmt::format("cannot open IPFIX file {}: {}", path, strerror(errno)));
    }
    std::vector<uint8_t> msg;
    uint64_t offset = 0;
    for (;;) {
        uint8_t hdr[4];
        in.read(reinterpret_cast<char*>(hdr), 4);
        if (in.gcount() == 0) {
            return;
        }
        if (in.gcount() < 4) {
            throw Error(fmt::format("{}: truncated IPFIX message header at offset {}", path, offset));
        }
        uint16_t len = static_cast<uint16_t>(hdr[2] << 8 | hdr[3]);
        if (len < 16) {
            throw Error(fmt::format("{}: IPFIX message at offset {} claims length {} (< 16): not an IPFIX file?",
                                    path, offset, len));
        }
        msg.resize(len);
        memcpy(msg.data(), hdr, 4);
        in.read(reinterpret_cast<char*>(msg.data() + 4), len - 4);
        if (in.gcount() != len - 4) {
            throw Error(fmt::format("{}: IPFIX message at offset {} is cut short ({} of {} bytes)", path, offset,
                                    in.gcount() + 4, len));
        }
        std::string problem = decoder.decode_message(msg);
        if (!problem.empty()) {
            throw Error(fmt::format("{}: IPFIX message at offset {}: {}", path, offset, problem));
        }
        offset += len;
    }
}

}  // namespace bpfix
