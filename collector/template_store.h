#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace bpfix {

// The templates one transport session announced, kept on disk so that a
// restarted collector can decode UDP data at once instead of dropping it
// until the exporter's next template refresh. Holds the raw template and
// options template records per (observation domain, template id), applies
// withdrawals, and writes them as IPFIX messages (one per domain) to
// `path` when they change (atomically: a temporary file, fsync, rename).
class TemplateStore {
public:
    explicit TemplateStore(std::string path);

    // Takes the template sets of one message (others are skipped). Returns
    // false when a template set is malformed (then nothing is learned from
    // this message; the decoder reports the problem).
    bool observe(std::span<const uint8_t> message);
    // Writes the file if the templates changed since the last save.
    // Throws bpfix::Error naming the file when the disk refuses.
    void save_if_changed();
    // The saved messages for replay into a new decoder ({} if none).
    static std::vector<std::vector<uint8_t>> load(const std::string& path);

    size_t size() const { return templates_.size(); }

private:
    std::string path_;
    // (domain, template id) -> (set id 2 or 3, the record's bytes)
    std::map<std::pair<uint32_t, uint16_t>, std::pair<uint16_t, std::vector<uint8_t>>> templates_;
    bool dirty_ = false;
};

}  // namespace bpfix
