#include "ipfix_encoder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <endian.h>

#include <cstring>
#include <ctime>
#include <string>

#include "error.h"

// Exported by libfixbuf 2 (declared in fixbuf/private.h, which a user of the
// library cannot include): the domain's next message sequence number.
extern "C" {
uint32_t fbSessionGetSequence(fbSession_t* session);
void fbSessionSetSequence(fbSession_t* session, uint32_t sequence);
}

namespace bpfix {
namespace {

std::string take_error(GError*& err) {
    std::string msg = err ? err->message : "unknown libfixbuf error";
    g_clear_error(&err);
    return msg;
}

constexpr size_t kMessageHeader = 16;
constexpr size_t kSetHeader = 4;

void put16(uint8_t* p, uint16_t v) {
    v = htobe16(v);
    memcpy(p, &v, 2);
}

void put32(uint8_t* p, uint32_t v) {
    v = htobe32(v);
    memcpy(p, &v, 4);
}

// A host-order integer of the in-memory record, big-endian on the wire.
template <typename T>
void put_be(uint8_t* out, const uint8_t* from) {
    T v;
    memcpy(&v, from, sizeof v);
    if constexpr (sizeof v == 2) {
        v = htobe16(v);
    } else if constexpr (sizeof v == 4) {
        v = htobe32(v);
    } else {
        v = htobe64(v);
    }
    memcpy(out, &v, sizeof v);
}

bool is_end_of_message(const GError* err) {
    return err && err->domain == FB_ERROR_DOMAIN && err->code == FB_ERROR_EOM;
}

}  // namespace

IpfixEncoder::IpfixEncoder(const InfoModel& model, uint32_t observation_domain, uint16_t max_message_size,
                           Sink sink, uint32_t enrichments)
    : model_(model), domain_(observation_domain), enrichments_(enrichments), sink_(std::move(sink)),
      buffer_(max_message_size), max_message_size_(max_message_size) {
    if (max_message_size < 512) {
        throw Error(fmt::format("IPFIX message size {} is too small (minimum 512 bytes)", max_message_size));
    }
    session_ = fbSessionAlloc(model_.get());
    // The domain must be set before external templates are added: templates
    // and sequence numbers are per domain.
    fbSessionSetDomain(session_, domain_);

    // The record in memory always holds the enrichment fields (at its end,
    // in groups: drops, DNS, RTT); the internal template must describe the
    // memory up to the last group that is on (a group skipped in the middle
    // would shift the ones after it), and no further, so a model without
    // the enterprise elements still encodes plain flows. The external
    // templates carry only the groups that are on.
    uint32_t internal_groups = 0, upto = 0;
    for (uint32_t group : {kSpecDrops, kSpecDns, kSpecRtt}) {
        upto |= group;
        if (enrichments_ & group) internal_groups = upto;
    }
    add_template(kInternalFlow, true, kFlowRecordSpec, kSpecV4 | kSpecV6 | kSpecInternal | internal_groups, 0);
    const uint32_t groups = enrichments_ & kSpecEnrichments;
    add_template(kTemplateFlowV4, false, kFlowRecordSpec, kSpecV4 | kSpecWire | groups, 0);
    add_template(kTemplateFlowV6, false, kFlowRecordSpec, kSpecV6 | kSpecWire | groups, 0);
    const uint32_t internal_flags = kSpecV4 | kSpecV6 | kSpecInternal | internal_groups;
    plan_v4_ = make_plan(model_, kFlowRecordSpec, internal_flags, kSpecV4 | kSpecWire | groups);
    plan_v6_ = make_plan(model_, kFlowRecordSpec, internal_flags, kSpecV6 | kSpecWire | groups);
    own_.resize(max_message_size);
    add_template(kInternalStats, true, kStatsRecordSpec, kSpecAll, kStatsScopeCount);
    add_template(kTemplateStats, false, kStatsRecordSpec, 0, kStatsScopeCount);
    add_template(kInternalSampling, true, kSamplingRecordSpec, kSpecAll, 1);
    add_template(kTemplateSampling, false, kSamplingRecordSpec, 0, 1);
    if (enrichments_ & kSpecDrops) {
        add_template(kInternalDropReasons, true, kDropReasonRecordSpec, kSpecAll, kDropReasonScopeCount);
        add_template(kTemplateDropReasons, false, kDropReasonRecordSpec, 0, kDropReasonScopeCount);
    }
    if (enrichments_ & kSpecPacketReports) {
        add_template(kInternalPacket, true, kPacketReportSpec, kSpecAll, 0);
        add_template(kTemplatePacketV4, false, kPacketReportSpec, kSpecV4 | kSpecIp, 0);
        add_template(kTemplatePacketV6, false, kPacketReportSpec, kSpecV6 | kSpecIp, 0);
        add_template(kTemplatePacketOther, false, kPacketReportSpec, 0, 0);
    }
    if (!model_.enterprise_elements().empty()) {
        GError* err = nullptr;
        for (bool internal : {true, false}) {
            fbTemplate_t* t = fbInfoElementAllocTypeTemplate(model_.get(), &err);
            if (!t) {
                throw Error("cannot build the RFC 5610 type template: " + take_error(err));
            }
            if (!fbSessionAddTemplate(session_, internal, internal ? kInternalTypeInfo : kTemplateTypeInfo, t,
                                      &err)) {
                throw Error("cannot add the RFC 5610 type template: " + take_error(err));
            }
        }
    }
    // The buffer comes after the templates: libfixbuf writes a template into
    // an attached buffer as soon as it is added, and export_templates()
    // writes them all again.
    exporter_ = fbExporterAllocBuffer(buffer_.data(), max_message_size);
    fbuf_ = fBufAllocForExport(session_, exporter_);
    export_templates();
}

IpfixEncoder::~IpfixEncoder() {
    if (fbuf_) {
        fBufFree(fbuf_);  // frees the session and exporter too
    } else if (session_) {
        fbSessionFree(session_);
    }
}

void IpfixEncoder::add_template(uint16_t id, bool internal, fbInfoElementSpec_t* spec, uint32_t flags,
                                uint32_t scope) {
    GError* err = nullptr;
    fbTemplate_t* t = fbTemplateAlloc(model_.get());
    if (!fbTemplateAppendSpecArray(t, spec, flags, &err)) {
        fbTemplateFreeUnused(t);
        throw Error(fmt::format("template {:#x}: {}", id, take_error(err)));
    }
    if (scope) {
        fbTemplateSetOptionsScope(t, scope);
    }
    if (!fbSessionAddTemplate(session_, internal, id, t, &err)) {
        throw Error(fmt::format("template {:#x}: {}", id, take_error(err)));
    }
    if (!internal) external_templates_.push_back(id);
}

// The same walk libfixbuf makes: an element is in a template when its flags
// are all in the template's; in memory a variable-length element is an
// fbVarfield_t, a fixed one its spec length.
IpfixEncoder::RecordPlan IpfixEncoder::make_plan(const InfoModel& model, const fbInfoElementSpec_t* spec,
                                                 uint32_t internal_flags, uint32_t external_flags) {
    RecordPlan plan;
    size_t offset = 0;
    const fbInfoElementSpec_t* prev = nullptr;  // the spec entry before, in memory
    for (const fbInfoElementSpec_t* e = spec; e->name; prev = e, ++e) {
        if ((e->flags & internal_flags) != e->flags) {
            if (!(e->flags & kSpecWire) || (e->flags & external_flags) != e->flags) continue;
            // The wire form of the memory-only element before it: its low
            // bytes, big-endian.
            if (!prev || strcmp(prev->name, e->name) != 0 || !(prev->flags & kSpecInternal) ||
                prev->len_override == FB_IE_VARLEN || e->len_override >= prev->len_override) {
                throw Error(fmt::format("element {}: a wire form must follow the same element, wider, in memory",
                                        e->name));
            }
            plan.fields.push_back({static_cast<uint16_t>(offset - prev->len_override), e->len_override,
                                   RecordPlan::kLowBytes});
            plan.fixed += e->len_override;
            continue;
        }
        const bool varlen = e->len_override == FB_IE_VARLEN;
        const size_t in_memory = varlen ? sizeof(fbVarfield_t) : e->len_override;
        if ((e->flags & external_flags) == e->flags) {
            const fbInfoElement_t* ie = fbInfoModelGetElementByName(model.get(), e->name);
            if (!ie) throw Error(fmt::format("information element {} is not in the model", e->name));
            RecordPlan::How how;
            switch (ie->type) {
            case FB_OCTET_ARRAY:
            case FB_STRING:
                how = varlen ? RecordPlan::kVarlen : RecordPlan::kCopy;
                break;
            case FB_MAC_ADDR:
            case FB_IP6_ADDR:
                how = RecordPlan::kCopy;
                break;
            case FB_UINT_8:
            case FB_UINT_16:
            case FB_UINT_32:
            case FB_UINT_64:
            case FB_BOOL:
            case FB_DT_SEC:
            case FB_DT_MILSEC:
            case FB_DT_MICROSEC:
            case FB_DT_NANOSEC:
            case FB_IP4_ADDR:
                how = RecordPlan::kSwap;
                break;
            default:  // signed, float: libfixbuf widens them; not needed here
                how = e->len_override == ie->len ? RecordPlan::kSwap : RecordPlan::kCopy;
                if (how == RecordPlan::kCopy) {
                    throw Error(fmt::format("element {}: reduced-length encoding of its type is not written by hand",
                                            e->name));
                }
            }
            if (how == RecordPlan::kVarlen) {
                plan.fields.push_back({static_cast<uint16_t>(offset), static_cast<uint16_t>(in_memory), how});
                plan.varlen_offsets.push_back(static_cast<uint16_t>(offset));
            } else {
                if (how == RecordPlan::kSwap && e->len_override != 1 && e->len_override != 2 &&
                    e->len_override != 4 && e->len_override != 8) {
                    throw Error(fmt::format("element {}: {} bytes is not an integer width", e->name, e->len_override));
                }
                plan.fields.push_back({static_cast<uint16_t>(offset), e->len_override, how});
                plan.fixed += e->len_override;
            }
        }
        offset += in_memory;
    }
    return plan;
}

void IpfixEncoder::write_record(const RecordPlan& plan, uint16_t tid, const void* rec) {
    const auto* in = static_cast<const uint8_t*>(rec);
    size_t size = plan.fixed;
    for (uint16_t offset : plan.varlen_offsets) {
        fbVarfield_t v;
        memcpy(&v, in + offset, sizeof v);
        size += (v.len < 255 ? 1 : 3) + v.len;
    }
    if (kMessageHeader + kSetHeader + size > max_message_size_) {
        throw Error(fmt::format("record of template {} ({} bytes) does not fit an empty {}-byte message", tid, size,
                                max_message_size_));
    }
    if (own_len_ != 0 && own_len_ + size + (tid == own_tid_ ? 0 : kSetHeader) > max_message_size_) emit_own();
    if (own_len_ == 0) {
        own_len_ = kMessageHeader;
        own_tid_ = 0;
    }
    if (tid != own_tid_) {
        if (own_tid_ != 0) put16(own_.data() + own_set_ + 2, static_cast<uint16_t>(own_len_ - own_set_));
        own_set_ = own_len_;
        put16(own_.data() + own_len_, tid);
        own_len_ += kSetHeader;
        own_tid_ = tid;
    }
    uint8_t* out = own_.data() + own_len_;
    for (const auto& f : plan.fields) {
        const uint8_t* from = in + f.offset;
        switch (f.how) {
        case RecordPlan::kCopy:
            memcpy(out, from, f.len);
            out += f.len;
            break;
        case RecordPlan::kSwap:
            switch (f.len) {
            case 1:
                *out = *from;
                break;
            case 2:
                put_be<uint16_t>(out, from);
                break;
            case 4:
                put_be<uint32_t>(out, from);
                break;
            default:
                put_be<uint64_t>(out, from);
            }
            out += f.len;
            break;
        case RecordPlan::kLowBytes:  // a little-endian integer's low bytes, big-endian
            for (uint16_t i = 0; i < f.len; ++i) out[i] = from[f.len - 1 - i];
            out += f.len;
            break;
        case RecordPlan::kVarlen: {
            fbVarfield_t v;
            memcpy(&v, from, sizeof v);
            if (v.len < 255) {
                *out++ = static_cast<uint8_t>(v.len);
            } else {
                *out++ = 255;
                put16(out, static_cast<uint16_t>(v.len));
                out += 2;
            }
            if (v.len) memcpy(out, v.buf, v.len);
            out += v.len;
        }
        }
    }
    own_len_ += size;
    ++own_records_;
}

// The message written by hand goes out with the session's sequence number,
// which then counts its records: libfixbuf's next message goes on from there.
void IpfixEncoder::emit_own() {
    if (own_records_ == 0) return;
    put16(own_.data() + own_set_ + 2, static_cast<uint16_t>(own_len_ - own_set_));
    uint8_t* h = own_.data();
    put16(h, 10);
    put16(h + 2, static_cast<uint16_t>(own_len_));
    put32(h + 4, static_cast<uint32_t>(time(nullptr)));
    const uint32_t seq = fbSessionGetSequence(session_);
    put32(h + 8, seq);
    put32(h + 12, domain_);
    fbSessionSetSequence(session_, seq + own_records_);
    IpfixMessage msg;
    msg.bytes.assign(own_.begin(), own_.begin() + static_cast<ptrdiff_t>(own_len_));
    msg.data_records = own_records_;
    ++messages_;
    octets_ += own_len_;
    own_len_ = 0;
    own_records_ = 0;
    own_tid_ = 0;
    sink_(std::move(msg));
}

void IpfixEncoder::select(uint16_t internal_id, uint16_t external_id) {
    GError* err = nullptr;
    if (internal_id != cur_internal_) {
        if (!fBufSetInternalTemplate(fbuf_, internal_id, &err)) {
            throw Error(fmt::format("internal template {:#x}: {}", internal_id, take_error(err)));
        }
        cur_internal_ = internal_id;
    }
    if (external_id != cur_external_) {
        if (!fBufSetExportTemplate(fbuf_, external_id, &err)) {
            throw Error(fmt::format("export template {}: {}", external_id, take_error(err)));
        }
        cur_external_ = external_id;
    }
}

void IpfixEncoder::append(const void* rec, size_t len, uint16_t internal_id, uint16_t external_id) {
    emit_own();
    select(internal_id, external_id);
    GError* err = nullptr;
    if (fBufAppend(fbuf_, const_cast<uint8_t*>(static_cast<const uint8_t*>(rec)), len, &err)) {
        ++pending_records_;
        return;
    }
    if (!is_end_of_message(err)) {
        throw Error("cannot encode record: " + take_error(err));
    }
    g_clear_error(&err);
    emit();
    // A new message starts a new set: the export template must be set again.
    cur_external_ = 0;
    select(internal_id, external_id);
    if (!fBufAppend(fbuf_, const_cast<uint8_t*>(static_cast<const uint8_t*>(rec)), len, &err)) {
        throw Error(fmt::format("record of template {} does not fit an empty {}-byte message: {}", external_id,
                                buffer_.size(), take_error(err)));
    }
    ++pending_records_;
}

void IpfixEncoder::add_flow(const FlowRecord& rec) {
    if (pending_records_ > 0) {  // libfixbuf's message (other records) ends first
        emit();
        cur_external_ = 0;
    }
    if (rec.ipVersion == 6) {
        write_record(plan_v6_, kTemplateFlowV6, &rec);
    } else {
        write_record(plan_v4_, kTemplateFlowV4, &rec);
    }
    ++flow_records_;
    ++data_records_;
}

void IpfixEncoder::add_stats(const StatsRecord& rec) {
    append(&rec, sizeof rec, kInternalStats, kTemplateStats);
    ++data_records_;
}

void IpfixEncoder::add_sampling(const SamplingRecord& rec) {
    append(&rec, sizeof rec, kInternalSampling, kTemplateSampling);
    ++data_records_;
}

void IpfixEncoder::add_drop_reason(const DropReasonRecord& rec) {
    if (!(enrichments_ & kSpecDrops)) {
        throw Error("drop-reason record without the drops enrichment (encoder built without kSpecDrops)");
    }
    append(&rec, sizeof rec, kInternalDropReasons, kTemplateDropReasons);
    ++data_records_;
}

// libfixbuf writes a set header when the template changes, before it finds
// that the record does not fit the message: the message it then ends
// carries an empty set (length 4) last, which decoders (libfixbuf's
// among them) refuse. It goes, and the message length with it.
void IpfixEncoder::drop_trailing_empty_set(std::vector<uint8_t>& m) {
    size_t off = 16, last = 0;
    while (off + 4 <= m.size()) {
        size_t set_len = static_cast<size_t>(m[off + 2]) << 8 | m[off + 3];
        if (set_len < 4) return;
        last = off;
        off += set_len;
    }
    if (last == 0 || off != m.size() || (static_cast<size_t>(m[last + 2]) << 8 | m[last + 3]) != 4) return;
    m.resize(last);
    m[2] = static_cast<uint8_t>(m.size() >> 8);
    m[3] = static_cast<uint8_t>(m.size());
}

// A message header (16), a set header (4), the largest fixed part of a
// packet report (IPv6: 60) and a 3-byte variable-length prefix, rounded up.
constexpr size_t kPacketReportOverhead = 96;

size_t IpfixEncoder::max_frame_section() const { return max_message_size_ - kPacketReportOverhead; }

void IpfixEncoder::add_packet_report(const PacketReportRecord& rec) {
    if (!(enrichments_ & kSpecPacketReports)) {
        throw Error("packet report without the packet report templates (encoder built without kSpecPacketReports)");
    }
    if (rec.dataLinkFrameSection.len > max_frame_section()) {
        throw Error(fmt::format("packet report of {} bytes does not fit a {}-byte IPFIX message",
                                rec.dataLinkFrameSection.len, max_message_size_));
    }
    uint16_t tid = rec.ipVersion == 4 ? kTemplatePacketV4 : rec.ipVersion == 6 ? kTemplatePacketV6 : kTemplatePacketOther;
    append(&rec, sizeof rec, kInternalPacket, tid);
    ++packet_reports_;
    ++data_records_;
}

void IpfixEncoder::emit() {
    emit_own();
    if (pending_records_ == 0 && !pending_templates_) {
        return;
    }
    GError* err = nullptr;
    if (!fBufEmit(fbuf_, &err)) {
        throw Error("cannot finish IPFIX message: " + take_error(err));
    }
    size_t len = fbExporterGetMsgLen(exporter_);
    IpfixMessage msg;
    msg.bytes.assign(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(len));
    drop_trailing_empty_set(msg.bytes);
    msg.data_records = pending_records_;
    // The RFC 5610 type records belong to the announcement: a transport
    // sends them with the templates, first on every connection.
    msg.templates = pending_templates_ || collecting_templates_;
    pending_records_ = 0;
    pending_templates_ = false;
    ++messages_;
    octets_ += len;
    if (collecting_templates_) {
        template_messages_.push_back(msg);
    }
    sink_(std::move(msg));
}

void IpfixEncoder::flush() { emit(); }

void IpfixEncoder::export_templates() {
    emit();
    template_messages_.clear();
    collecting_templates_ = true;
    GError* err = nullptr;
    // The RFC 5610 type template and records go first: a collector maps a
    // template's elements when the template arrives, so it must know the
    // enterprise elements by then, or it names them by number.
    if (!model_.enterprise_elements().empty()) {
        export_template_set({kTemplateTypeInfo});
    }
    for (const fbInfoElement_t* ie : model_.enterprise_elements()) {
        select(kInternalTypeInfo, kTemplateTypeInfo);
        if (fbInfoElementWriteOptionsRecord(fbuf_, ie, kInternalTypeInfo, kTemplateTypeInfo, &err)) {
            ++pending_records_;
            ++data_records_;
            continue;
        }
        if (!is_end_of_message(err)) {
            throw Error(fmt::format("cannot write the RFC 5610 record for {}: {}", ie->ref.name, take_error(err)));
        }
        g_clear_error(&err);
        emit();
        cur_internal_ = cur_external_ = 0;
        select(kInternalTypeInfo, kTemplateTypeInfo);
        if (!fbInfoElementWriteOptionsRecord(fbuf_, ie, kInternalTypeInfo, kTemplateTypeInfo, &err)) {
            throw Error(fmt::format("cannot write the RFC 5610 record for {}: {}", ie->ref.name, take_error(err)));
        }
        ++pending_records_;
        ++data_records_;
    }
    emit();
    cur_internal_ = cur_external_ = 0;
    export_template_set(external_templates_);
    collecting_templates_ = false;
}

void IpfixEncoder::export_template_set(const std::vector<uint16_t>& ids) {
    GError* err = nullptr;
    // Templates go out in automatic mode into an empty buffer (libfixbuf
    // insists on a fresh message after a template export in manual mode);
    // the data that follows is appended in manual mode so that we see and
    // deliver every message ourselves.
    //
    // Each options template gets a set of its own: nfacctd (pmacct 1.7.7)
    // reads only the first template of an options template set and calls
    // the rest malformed. libfixbuf starts a new set when the set type
    // changes, so options templates alternate with the others; where the
    // others run out, the message ends between two options templates.
    std::vector<uint16_t> options, others;
    for (uint16_t id : ids) {
        fbTemplate_t* t = fbSessionGetTemplate(session_, FALSE, id, &err);
        if (!t) throw Error(fmt::format("cannot export template {}: {}", id, take_error(err)));
        (fbTemplateGetOptionsScope(t) ? options : others).push_back(id);
    }
    fBufSetAutomaticMode(fbuf_, TRUE);
    auto put = [&](uint16_t id) {
        if (!fbSessionExportTemplate(session_, id, &err)) {
            throw Error(fmt::format("cannot export template {}: {}", id, take_error(err)));
        }
    };
    size_t next_other = 0;
    bool options_last = false;
    for (uint16_t id : options) {
        if (options_last) {
            if (next_other < others.size()) {
                put(others[next_other++]);
            } else {
                pending_templates_ = true;
                emit();
            }
        }
        put(id);
        options_last = true;
    }
    while (next_other < others.size()) put(others[next_other++]);
    fBufSetAutomaticMode(fbuf_, FALSE);
    pending_templates_ = true;
    emit();
    cur_internal_ = cur_external_ = 0;
}

}  // namespace bpfix
