#include "ipfix_decoder.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>

#include "error.h"

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

uint64_t read_unsigned(const uint8_t* p, uint16_t len) {
    switch (len) {
        case 1: return *p;
        case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
        case 8: { uint64_t v; memcpy(&v, p, 8); return v; }
        default: {
            // Reduced-size encodings of other widths: libfixbuf leaves them
            // in network order.
            uint64_t v = 0;
            for (uint16_t i = 0; i < len && i < 8; ++i) v = v << 8 | p[i];
            return v;
        }
    }
}

int64_t read_signed(const uint8_t* p, uint16_t len) {
    switch (len) {
        case 1: return static_cast<int8_t>(*p);
        case 2: { int16_t v; memcpy(&v, p, 2); return v; }
        case 4: { int32_t v; memcpy(&v, p, 4); return v; }
        default: { int64_t v; memcpy(&v, p, 8); return v; }
    }
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

nlohmann::ordered_json value_of(const Field& f, const uint8_t* rec) {
    const uint8_t* p = rec + f.offset;
    const uint8_t* data = p;
    size_t len = f.len;
    if (f.len == FB_IE_VARLEN) {
        fbVarfield_t v;
        memcpy(&v, p, sizeof v);
        data = v.buf;
        len = v.len;
    }
    switch (f.ie->type) {
        case FB_UINT_8:
        case FB_UINT_16:
        case FB_UINT_32:
        case FB_UINT_64:
            return read_unsigned(data, static_cast<uint16_t>(len));
        case FB_INT_8:
        case FB_INT_16:
        case FB_INT_32:
        case FB_INT_64:
            return read_signed(data, static_cast<uint16_t>(len));
        case FB_FLOAT_32: {
            if (len == 4) { float v; memcpy(&v, data, 4); return v; }
            double v; memcpy(&v, data, 8); return v;
        }
        case FB_FLOAT_64: {
            if (len == 4) { float v; memcpy(&v, data, 4); return v; }
            double v; memcpy(&v, data, 8); return v;
        }
        case FB_BOOL:
            return *data == 1;
        case FB_MAC_ADDR:
            if (len != 6) return hex(data, len);
            return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", data[0], data[1], data[2], data[3],
                               data[4], data[5]);
        case FB_STRING:
            return std::string(reinterpret_cast<const char*>(data), strnlen(reinterpret_cast<const char*>(data), len));
        case FB_DT_SEC:
            return rfc3339(static_cast<int64_t>(read_unsigned(data, static_cast<uint16_t>(len))), 0, 0);
        case FB_DT_MILSEC: {
            uint64_t ms = read_unsigned(data, static_cast<uint16_t>(len));
            return rfc3339(static_cast<int64_t>(ms / 1000), ms % 1000, 3);
        }
        case FB_DT_MICROSEC:
            return ntp_time(read_unsigned(data, 8), true);
        case FB_DT_NANOSEC:
            return ntp_time(read_unsigned(data, 8), false);
        case FB_IP4_ADDR: {
            uint32_t a = htonl(static_cast<uint32_t>(read_unsigned(data, 4)));
            char buf[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &a, buf, sizeof buf);
            return std::string(buf);
        }
        case FB_IP6_ADDR: {
            char buf[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, data, buf, sizeof buf);
            return std::string(buf);
        }
        default:
            return hex(data, len);
    }
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
    fbTemplate_t* internal;
    std::vector<Field> fields;
};

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
            if (!fbTemplateAppend(internal, ie, &err)) {
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

void IpfixDecoder::decode_record(const TemplateInfo& info, uint32_t domain) {
    DecodedRecord out;
    out.observation_domain = domain;
    out.template_id = info.external_id;
    out.options = info.options;
    const uint8_t* rec = record_.data();
    for (const Field& f : info.fields) {
        if (is_list(f.ie)) {
            continue;  // structured data (RFC 6313) is not decoded yet
        }
        out.fields[f.name] = value_of(f, rec);
    }
    ++records_;
    sink_(out);
}

std::string IpfixDecoder::decode_message(std::span<const uint8_t> message) {
    if (message.size() < 16) {
        ++malformed_;
        return fmt::format("message of {} bytes is shorter than the 16-byte IPFIX header", message.size());
    }
    uint16_t version = static_cast<uint16_t>(message[0] << 8 | message[1]);
    uint16_t length = static_cast<uint16_t>(message[2] << 8 | message[3]);
    if (version != 10) {
        ++malformed_;
        return fmt::format("version {} is not IPFIX (10)", version);
    }
    if (length != message.size()) {
        ++malformed_;
        return fmt::format("header length {} does not match the {} bytes received", length, message.size());
    }
    uint32_t domain = static_cast<uint32_t>(message[12]) << 24 | static_cast<uint32_t>(message[13]) << 16 |
                      static_cast<uint32_t>(message[14]) << 8 | message[15];
    ++messages_;
    GError* err = nullptr;
    // libfixbuf parses in place and may rewrite nothing, but wants a
    // non-const pointer.
    std::vector<uint8_t> copy(message.begin(), message.end());
    fBufSetBuffer(fbuf_, copy.data(), copy.size());
    for (;;) {
        uint16_t ext_tid = 0;
        fbTemplate_t* ext = fBufNextCollectionTemplate(fbuf_, &ext_tid, &err);
        if (!ext) {
            if (err && err->domain == FB_ERROR_DOMAIN &&
                (err->code == FB_ERROR_EOM || err->code == FB_ERROR_BUFSZ || err->code == FB_ERROR_EOF)) {
                g_clear_error(&err);
                return {};
            }
            ++malformed_;
            return take_error(err);
        }
        auto* info = static_cast<TemplateInfo*>(fbTemplateGetContext(ext));
        if (!info) {
            ++malformed_;
            return fmt::format("no usable template {} for a data set", ext_tid);
        }
        if (!fBufSetInternalTemplate(fbuf_, info->internal_id, &err)) {
            ++malformed_;
            return take_error(err);
        }
        if (info->type_info) {
            fbInfoElementOptRec_t opt{};
            size_t len = sizeof opt;
            if (!fBufNext(fbuf_, reinterpret_cast<uint8_t*>(&opt), &len, &err)) {
                ++malformed_;
                return take_error(err);
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
            out.fields["informationElementName"] = std::string(reinterpret_cast<const char*>(opt.ie_name.buf), opt.ie_name.len);
            out.fields["informationElementDescription"] =
                std::string(reinterpret_cast<const char*>(opt.ie_desc.buf), opt.ie_desc.len);
            ++records_;
            sink_(out);
            continue;
        }
        size_t len = fbTemplateGetIELenOfMemBuffer(info->internal);
        record_.assign(len, 0);
        if (!fBufNext(fbuf_, record_.data(), &len, &err)) {
            ++malformed_;
            return take_error(err);
        }
        decode_record(*info, domain);
        if (info->has_lists) {
            fBufListFree(info->internal, record_.data());
        }
    }
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
