#pragma once

#include <fixbuf/public.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "info_model.h"

namespace bpfix {

struct DecodedRecord {
    uint32_t observation_domain = 0;
    uint16_t template_id = 0;
    bool options = false;
    // Element name -> value, in template order. Addresses as text,
    // dateTime elements as RFC 3339 UTC strings, numbers as numbers,
    // octet arrays as hex.
    nlohmann::ordered_json fields;
};

// Decodes IPFIX messages of any exporter with libfixbuf, generically: every
// template received gets a matching internal template, so every element is
// named (IANA, our enterprise elements, and those learned from RFC 5610 type
// records). One decoder = one transport session, one thread.
class IpfixDecoder {
public:
    using Sink = std::function<void(const DecodedRecord&)>;

    IpfixDecoder(InfoModel& model, Sink sink);
    ~IpfixDecoder();
    IpfixDecoder(const IpfixDecoder&) = delete;
    IpfixDecoder& operator=(const IpfixDecoder&) = delete;

    // Decodes one complete message (header included). Returns an empty
    // string, or what was wrong with the message; records decoded before the
    // problem have been delivered.
    std::string decode_message(std::span<const uint8_t> message);

    uint64_t messages() const { return messages_; }
    uint64_t records() const { return records_; }
    uint64_t malformed() const { return malformed_; }

    struct TemplateInfo;

private:
    static void on_new_template(fbSession_t*, uint16_t, fbTemplate_t*, void*, void**, fbTemplateCtxFree_fn*);
    void decode_record(const TemplateInfo& info, uint32_t domain);

    InfoModel& model_;
    Sink sink_;
    fBuf_t* fbuf_ = nullptr;  // owns the session
    fbSession_t* session_ = nullptr;
    uint16_t next_internal_id_ = 0x8000;
    std::vector<uint8_t> record_;
    uint64_t messages_ = 0;
    uint64_t records_ = 0;
    uint64_t malformed_ = 0;
};

// Reads an IPFIX file (RFC 5655: IPFIX messages back to back) and decodes
// every message. Throws bpfix::Error naming the file and offset of a broken
// message, after delivering everything before it.
void read_ipfix_file(const std::string& path, IpfixDecoder& decoder);

}  // namespace bpfix
