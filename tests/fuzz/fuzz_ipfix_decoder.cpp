// libFuzzer target: any bytes, read as a stream of IPFIX messages (TCP,
// files), framed with ipfix_message_length and decoded with IpfixDecoder.
// ASan/UBSan catch bad reads; the checks below catch broken promises.
#include <glib.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "info_model.h"
#include "ipfix_decoder.h"

namespace {

void quiet(const gchar*, GLogLevelFlags, const gchar*, gpointer) {}

void require(bool ok, const char* what) {
    if (!ok) {
        fprintf(stderr, "fuzz_ipfix_decoder: %s\n", what);
        abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool init = [] {
        spdlog::set_level(spdlog::level::off);
        g_log_set_default_handler(quiet, nullptr);
        return true;
    }();
    (void)init;

    // A fresh model and decoder per input: RFC 5610 records mutate the model.
    bpfix::InfoModel model;
    uint64_t values = 0;
    bpfix::IpfixDecoder dec(model, [&](const bpfix::DecodedRecord& r) { values += r.fields.size(); });
    std::span<const uint8_t> rest(data, size);
    std::string framing;
    while (!rest.empty()) {
        auto len = bpfix::ipfix_message_length(rest, framing);
        if (!len) {
            // Unframeable or incomplete: as one message it must be refused.
            uint64_t before = dec.malformed();
            require(!dec.decode_message(rest).empty(), "an unframed tail decoded without error");
            require(dec.malformed() == before + 1, "a refused message was not counted as malformed");
            break;
        }
        require(*len >= 16 && *len <= rest.size(), "ipfix_message_length framed outside the buffer");
        uint64_t before = dec.malformed();
        std::string problem = dec.decode_message(rest.first(*len));
        require(dec.malformed() == before + (problem.empty() ? 0 : 1), "malformed count disagrees with the result");
        rest = rest.subspan(*len);
    }
    return 0;
}
