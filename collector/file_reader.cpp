#include "file_reader.h"

#include "info_model.h"
#include "ipfix_decoder.h"

namespace bpfix {

uint64_t dump_ipfix_file_jsonl(const std::string& path, uint32_t pen, std::FILE* out) {
    InfoModel model(pen);
    uint64_t n = 0;
    // Options records (RFC 5610 type records, exporter statistics, sampling,
    // drop reasons) come after every flow: an exporter sends its type
    // records first, and `--read F | head` showed nothing else. A file
    // holds few of them (once per template refresh or stats interval).
    std::string metadata;
    auto write_metadata = [&] {
        std::fwrite(metadata.data(), 1, metadata.size(), out);
        metadata.clear();
    };
    IpfixDecoder decoder(model, [&](const DecodedRecord& rec) {
        nlohmann::ordered_json line = rec.fields;
        line["templateId"] = rec.template_id;
        line["observationDomainId"] = rec.observation_domain;
        std::string s = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        s += '\n';
        if (rec.options) {
            metadata += s;
        } else {
            std::fwrite(s.data(), 1, s.size(), out);
        }
        ++n;
    });
    try {
        read_ipfix_file(path, decoder);
    } catch (...) {  // a broken file: what came before it still goes out, metadata included, then the error
        write_metadata();
        std::fflush(out);
        throw;
    }
    write_metadata();
    std::fflush(out);
    return n;
}

}  // namespace bpfix
