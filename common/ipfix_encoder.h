#pragma once

#include <fixbuf/public.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "flow_templates.h"
#include "info_model.h"

namespace bpfix {

// One complete IPFIX message, ready for a transport.
struct IpfixMessage {
    std::vector<uint8_t> bytes;
    uint32_t data_records = 0;  // data records inside (for sequence numbers)
    bool templates = false;     // carries template sets
};

// Encodes bpfix records into RFC 7011 messages with libfixbuf. It owns no
// socket: each finished message goes to the sink, and the transports (owned
// by us, not libfixbuf) send it. Message size is set per transport, so UDP
// messages fit the path MTU. One encoder = one observation domain, one
// thread.
class IpfixEncoder {
public:
    using Sink = std::function<void(IpfixMessage&&)>;

    // `enrichments` (kSpecDrops, ...) chooses the optional elements of the
    // flow templates and the options templates that go with them.
    IpfixEncoder(const InfoModel& model, uint32_t observation_domain, uint16_t max_message_size, Sink sink,
                 uint32_t enrichments = 0);
    ~IpfixEncoder();
    IpfixEncoder(const IpfixEncoder&) = delete;
    IpfixEncoder& operator=(const IpfixEncoder&) = delete;

    void add_flow(const FlowRecord& rec);
    void add_stats(const StatsRecord& rec);
    void add_sampling(const SamplingRecord& rec);
    // Only with kSpecDrops in `enrichments`.
    void add_drop_reason(const DropReasonRecord& rec);
    // Only with kSpecPacketReports in `enrichments`. The frame section
    // must fit a message: at most max_frame_section() bytes.
    void add_packet_report(const PacketReportRecord& rec);
    size_t max_frame_section() const;
    uint64_t packet_reports() const { return packet_reports_; }
    uint32_t enrichments() const { return enrichments_; }
    // Ends the pending message, then sends every template and the RFC 5610
    // type records for the enterprise elements in their own message(s).
    void export_templates();
    // Emits the pending message, if it holds anything.
    void flush();

    // The last templates message(s), for a transport that must re-announce
    // templates on a new connection before sending queued data.
    const std::vector<IpfixMessage>& template_messages() const { return template_messages_; }

    uint64_t messages() const { return messages_; }
    uint64_t octets() const { return octets_; }
    uint64_t flow_records() const { return flow_records_; }
    uint64_t data_records() const { return data_records_; }
    uint32_t observation_domain() const { return domain_; }

    // One data template written by hand (flow records, the bulk of every
    // export): libfixbuf's generic transcoding costs more than the rest of
    // pcap mode on a flow-per-packet capture. Built from the same element
    // list and flags as the libfixbuf template, so the bytes are the same
    // (tests/unit/test_ipfix_roundtrip.cpp compares them).
    struct RecordPlan {
        enum How : uint8_t { kCopy, kSwap, kLowBytes, kVarlen };
        struct Field {
            uint16_t offset;  // in the in-memory record
            uint16_t len;     // on the wire; for kVarlen, sizeof(fbVarfield_t) in memory
            How how;
        };
        std::vector<Field> fields;
        std::vector<uint16_t> varlen_offsets;  // the kVarlen fields' offsets (a record's size)
        size_t fixed = 0;  // wire bytes of the fixed-length fields
    };

private:
    static RecordPlan make_plan(const InfoModel& model, const fbInfoElementSpec_t* spec, uint32_t internal_flags,
                                uint32_t external_flags);
    void write_record(const RecordPlan& plan, uint16_t tid, const void* rec);
    void emit_own();
    void add_template(uint16_t id, bool internal, fbInfoElementSpec_t* spec, uint32_t flags, uint32_t scope);
    void select(uint16_t internal_id, uint16_t external_id);
    void append(const void* rec, size_t len, uint16_t internal_id, uint16_t external_id);
    void emit();
    static void drop_trailing_empty_set(std::vector<uint8_t>& message);
    // One message holding the templates `ids` (external).
    void export_template_set(const std::vector<uint16_t>& ids);

    const InfoModel& model_;
    uint32_t domain_;
    uint32_t enrichments_;
    Sink sink_;
    std::vector<uint8_t> buffer_;
    fbExporter_t* exporter_ = nullptr;  // owned by fbuf_
    fBuf_t* fbuf_ = nullptr;            // owns the session and exporter
    fbSession_t* session_ = nullptr;
    uint16_t cur_internal_ = 0;
    uint16_t cur_external_ = 0;
    uint32_t pending_records_ = 0;
    bool pending_templates_ = false;
    bool collecting_templates_ = false;
    std::vector<IpfixMessage> template_messages_;
    std::vector<uint16_t> external_templates_;  // data and options templates, in the order added
    uint64_t messages_ = 0;
    uint64_t octets_ = 0;
    uint64_t flow_records_ = 0;
    uint64_t data_records_ = 0;
    uint64_t packet_reports_ = 0;
    uint16_t max_message_size_;
    // The message being written by hand (flow records); empty when none.
    RecordPlan plan_v4_, plan_v6_;
    std::vector<uint8_t> own_;  // max_message_size_ bytes
    size_t own_len_ = 0;  // bytes written; 0: no message
    size_t own_set_ = 0;  // offset of the open set's header
    uint16_t own_tid_ = 0;
    uint32_t own_records_ = 0;
};

}  // namespace bpfix
