#include "info_model.h"

#include <fmt/format.h>

#include <string>

#include "error.h"

extern "C" {
extern const char bpfix_elements_xml[];
extern const unsigned long bpfix_elements_xml_size;
}

namespace bpfix {

std::string_view builtin_registry_xml() {
    return {bpfix_elements_xml, bpfix_elements_xml_size};
}

InfoModel::InfoModel(uint32_t pen) : InfoModel(pen, builtin_registry_xml()) {}

InfoModel::InfoModel(uint32_t pen, std::string_view registry_xml)
    : model_(fbInfoModelAlloc()), pen_(pen) {
    if (pen == 0) {
        throw Error("private enterprise number 0 is IANA's own: set `pen` to your PEN (default 32473)");
    }
    // Read the registry into a scratch model, then copy its enterprise
    // elements into ours under the configured PEN.
    std::unique_ptr<fbInfoModel_t, Free> scratch(fbInfoModelAlloc());
    GError* err = nullptr;
    if (!fbInfoModelReadXMLData(scratch.get(), registry_xml.data(), registry_xml.size(), &err)) {
        std::string msg = err ? err->message : "unknown error";
        g_clear_error(&err);
        throw Error("cannot read the information-element registry (templates/bpfix-elements.xml): " + msg);
    }
    std::vector<fbInfoElement_t> copies;
    fbInfoModelIter_t it;
    fbInfoModelIterInit(&it, scratch.get());
    while (const fbInfoElement_t* ie = fbInfoModelIterNext(&it)) {
        if (ie->ent != kDefaultPen) {
            continue;
        }
        fbInfoElement_t copy = *ie;
        copy.ent = pen;
        copies.push_back(copy);
    }
    // fbInfoModelAddElement copies the element (and its strings) into the model.
    for (auto& c : copies) {
        fbInfoModelAddElement(model_.get(), &c);
    }
    for (const auto& c : copies) {
        const fbInfoElement_t* added = fbInfoModelGetElementByID(model_.get(), c.num, pen);
        if (!added) {
            throw Error(fmt::format("enterprise element {} ({}/{}) did not load", c.ref.name, pen, c.num));
        }
        enterprise_.push_back(added);
    }
}

const fbInfoElement_t* InfoModel::element(const char* name) const {
    const fbInfoElement_t* ie = fbInfoModelGetElementByName(model_.get(), name);
    if (!ie) {
        throw Error(fmt::format("information element '{}' is not in the information model", name));
    }
    return ie;
}

}  // namespace bpfix
