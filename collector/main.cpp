// bpfix-collector: a thin main over the collector library.
//
// This version reads IPFIX files; receiving from exporters over the network
// (listeners, rotated output files) is not built yet and says so.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "error.h"
#include "file_reader.h"
#include "info_model.h"
#include "log.h"

#ifndef BPFIX_VERSION
#define BPFIX_VERSION "unknown"
#endif

int main(int argc, char** argv) {
    using namespace bpfix;
    CLI::App app{"bpfix-collector: decodes IPFIX (RFC 7011) from exporters and files"};
    app.set_version_flag("--version", std::string("bpfix-collector ") + BPFIX_VERSION);
    std::string read_path;
    std::vector<std::string> listen;
    int64_t pen = kDefaultPen;
    std::string log_level = "warn";
    app.add_option("-r,--read", read_path, "decode this IPFIX file and print its records as JSON lines");
    app.add_option("--listen", listen, "udp://ADDR:PORT or tcp://ADDR:PORT (not available yet)");
    app.add_option("--pen", pen, "private enterprise number of bpfix elements")->check(CLI::Range(1LL, 4294967295LL));
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        init_logging("bpfix-collector", log_level);
        if (!listen.empty()) {
            throw Error("--listen: receiving IPFIX over the network is not built yet in this version; use "
                        "--read FILE to decode an IPFIX file");
        }
        if (read_path.empty()) {
            throw Error("nothing to do: give --read FILE.ipfix (network listeners are not built yet)");
        }
        dump_ipfix_file_jsonl(read_path, static_cast<uint32_t>(pen), stdout);
        return 0;
    } catch (const Error& e) {
        fmt::print(stderr, "bpfix-collector: error: {}\n", e.what());
        return 2;
    }
}
