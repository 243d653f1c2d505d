#pragma once

#include <fixbuf/public.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace bpfix {

// RFC 5612 reserves 32473 for documentation: our default until a user sets
// their own Private Enterprise Number.
inline constexpr uint32_t kDefaultPen = 32473;

// The information model both daemons use: libfixbuf's IANA elements plus the
// enterprise elements from templates/bpfix-elements.xml (embedded at build
// time), moved to the configured PEN.
class InfoModel {
public:
    explicit InfoModel(uint32_t pen = kDefaultPen);
    // Loads enterprise elements from the given registry XML instead of the
    // built-in one (tests, and later user-supplied registries).
    InfoModel(uint32_t pen, std::string_view registry_xml);

    fbInfoModel_t* get() const { return model_.get(); }
    uint32_t pen() const { return pen_; }
    // The enterprise elements (owned by the model), announced with RFC 5610.
    const std::vector<const fbInfoElement_t*>& enterprise_elements() const { return enterprise_; }
    // Element by name; throws bpfix::Error when the model lacks it.
    const fbInfoElement_t* element(const char* name) const;

private:
    struct Free {
        void operator()(fbInfoModel_t* m) const { fbInfoModelFree(m); }
    };
    std::unique_ptr<fbInfoModel_t, Free> model_;
    uint32_t pen_;
    std::vector<const fbInfoElement_t*> enterprise_;
};

// The registry shipped in templates/bpfix-elements.xml.
std::string_view builtin_registry_xml();

}  // namespace bpfix
