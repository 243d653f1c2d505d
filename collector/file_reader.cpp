#include "file_reader.h"

#include "info_model.h"
#include "ipfix_decoder.h"

namespace bpfix {

uint64_t dump_ipfix_file_jsonl(const std::string& path, uint32_t pen, std::FILE* out) {
    InfoModel model(pen);
    uint64_t n = 0;
    IpfixDecoder decoder(model, [&](const DecodedRecord& rec) {
        nlohmann::ordered_json line = rec.fields;
        line["templateId"] = rec.template_id;
        line["observationDomainId"] = rec.observation_domain;
        std::string s = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        s += '\n';
        std::fwrite(s.data(), 1, s.size(), out);
        ++n;
    });
    read_ipfix_file(path, decoder);
    std::fflush(out);
    return n;
}

}  // namespace bpfix
