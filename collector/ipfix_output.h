#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "output.h"

namespace bpfix {

// The `ipfix` output format: the messages as received, in rotated IPFIX
// files (RFC 5655: messages back to back, flows-TIME.ipfix). Messages of
// all sessions share a file, so template ids are renumbered per file
// (session, domain, template -> a file-unique id; observation domains and
// records stay as sent), each file starts every template it uses before
// its first data set, and sequence numbers are rewritten to count the data
// records of each domain in the file. The exporter's address is not in the
// file (it is in the JSONL output). Writing happens on its own thread,
// behind a bounded queue like OutputQueue.
class IpfixOutput {
public:
    IpfixOutput(RotatingWriter::Options opt, uint64_t max_queued_bytes);
    ~IpfixOutput();

    // One message that decoded without a problem, with its data record
    // count; an empty message: the session ended, forget its templates.
    bool push(uint64_t session, std::span<const uint8_t> message, uint64_t records);
    // Finishes the open file (SIGHUP); under `limits` from the next one
    // when given (a reload).
    void rotate_now(std::optional<RotationLimits> limits = std::nullopt);
    void stop() { worker_.stop(); }

    uint64_t messages_written() const;
    uint64_t records_dropped() const;
    uint64_t files_finished() const { return writer_.files_finished(); }

private:
    // Messages queued back to back in one buffer (a copy and an allocation
    // per message cost more than the rest of the queueing).
    struct Item {
        struct Message {
            uint64_t session;
            size_t offset, length;
            uint64_t records;
        };
        std::vector<uint8_t> bytes;
        std::vector<Message> messages;
    };
    struct Message {
        uint64_t session;
        std::span<const uint8_t> msg;
        uint64_t records;
    };
    void write_batch(std::deque<Item>& batch, bool rotate, bool stop);
    void write_one(const Message& m, int64_t now);
    void build(const Message& m, std::string& out);  // appends the bytes for the current file
    // Whether `bytes` more, after `have` in the open file, need a new file.
    bool starts_new_file(uint64_t have, size_t bytes, int64_t now) const;
    void flush(int64_t now);  // the pending bytes into the file

    RotatingWriter writer_;
    uint64_t max_file_bytes_;
    // Built messages not written yet: one write() per batch or MiB, not
    // per message (a write per message cost 40% of ingest in ext4).
    std::string pending_;
    uint64_t pending_messages_ = 0, pending_records_ = 0;
    uint64_t file_bytes_ = 0;  // written into the open file
    mutable std::mutex mu_;    // the counters and spare_
    uint64_t written_ = 0, dropped_ = 0;
    // Buffers of written items, for the next ones (push() allocated and
    // faulted in a fresh 256 KiB per item).
    static constexpr size_t kSpareItems = 8;
    std::vector<std::vector<uint8_t>> spare_;

    // Writer-thread state. Every template each session defined, as raw
    // records: (session, domain, id) -> (set id, record).
    std::map<std::tuple<uint64_t, uint32_t, uint16_t>, std::pair<uint16_t, std::vector<uint8_t>>> templates_;
    // This file: (session, domain, id) -> file id; next free id and data
    // records written per domain.
    std::map<std::tuple<uint64_t, uint32_t, uint16_t>, uint16_t> file_ids_;
    std::map<uint32_t, uint32_t> next_id_, file_seq_;
    WriterThread<Item> worker_;  // last: its thread uses the rest
};

}  // namespace bpfix
