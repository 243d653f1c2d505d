#pragma once

#include <cstdio>
#include <string>

namespace bpfix {

// Decodes an IPFIX file (RFC 5655) and writes one JSON object per data
// record to `out`: element names as keys, plus templateId and
// observationDomainId. Flow records first, in file order; options records
// (type records, statistics, sampling, drop reasons) after them. Returns the number of records written. Throws
// bpfix::Error for an unreadable or broken file, after writing everything
// before the broken message.
uint64_t dump_ipfix_file_jsonl(const std::string& path, uint32_t pen, std::FILE* out);

}  // namespace bpfix
