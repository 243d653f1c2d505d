// bpfix-collector: a thin main over the collector library.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "collector.h"
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
    std::string log_level = "info";
    CollectorConfig cfg;
    app.add_option("-r,--read", read_path, "decode this IPFIX file and print its records as JSON lines");
    app.add_option("--listen", listen, "receive IPFIX on udp://ADDR:PORT or tcp://ADDR:PORT (repeatable; [::] for all)");
    app.add_option("-o,--output-dir", cfg.output_dir, "write records here as rotated JSON-lines files");
    app.add_option("--rotate-interval", cfg.rotate_interval_s, "seconds per output file, aligned to the clock")
        ->check(CLI::Range(1, 86400));
    app.add_option("--rotate-size", cfg.rotate_size_bytes, "also start a new file past this many bytes (0: never)");
    app.add_option("--max-sessions", cfg.max_sessions, "exporter transport sessions at once (UDP sources + TCP)")
        ->check(CLI::Range(1, 1000000));
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
            cfg.listen = listen;
            cfg.pen = static_cast<uint32_t>(pen);
            return run_collector(cfg);
        }
        if (read_path.empty()) {
            throw Error("nothing to do: give --listen URL --output-dir DIR to collect, or --read FILE.ipfix");
        }
        dump_ipfix_file_jsonl(read_path, static_cast<uint32_t>(pen), stdout);
        return 0;
    } catch (const Error& e) {
        fmt::print(stderr, "bpfix-collector: error: {}\n", e.what());
        return 2;
    }
}
