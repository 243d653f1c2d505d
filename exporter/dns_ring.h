// Live mode's DNS messages: reads the TC programs' ring buffer of DNS
// packet payloads (bpfix_dns_event) into a DnsEnricher.
#pragma once

#include <cstdint>

#include "dns.h"

struct ring_buffer;

namespace bpfix {

class DnsRing {
public:
    // `ring_fd`: KernelMeter::dns_ring_fd(). Throws bpfix::Error when
    // libbpf cannot map it.
    DnsRing(int ring_fd, DnsEnricher& enricher);
    ~DnsRing();
    DnsRing(const DnsRing&) = delete;
    DnsRing& operator=(const DnsRing&) = delete;

    // Hands every event waiting in the ring to the enricher (no waiting);
    // returns how many.
    size_t poll();
    // Events whose payload was cut at BPFIX_DNS_SNAP bytes.
    uint64_t truncated() const { return truncated_; }
    uint64_t events() const { return events_; }
    // Readable when events wait (for an event loop).
    int epoll_fd() const;

private:
    static int on_event(void* ctx, void* data, size_t size);

    DnsEnricher& enricher_;
    ring_buffer* rb_ = nullptr;
    uint64_t events_ = 0, truncated_ = 0;
};

}  // namespace bpfix
