#include "dns_ring.h"

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "bpfix_abi.h"
#include "error.h"

namespace bpfix {

DnsRing::DnsRing(int ring_fd, DnsEnricher& enricher) : enricher_(enricher) {
    rb_ = ring_buffer__new(ring_fd, &DnsRing::on_event, this, nullptr);
    if (!rb_) throw Error(fmt::format("cannot map the DNS ring buffer: {}", std::strerror(errno)));
}

DnsRing::~DnsRing() { ring_buffer__free(rb_); }

int DnsRing::on_event(void* ctx, void* data, size_t size) {
    auto* self = static_cast<DnsRing*>(ctx);
    if (size < sizeof(bpfix_dns_event)) return 0;
    const auto* ev = static_cast<const bpfix_dns_event*>(data);
    uint32_t len = ev->len <= BPFIX_DNS_SNAP ? ev->len : BPFIX_DNS_SNAP;
    ++self->events_;
    if (ev->orig_len > len) ++self->truncated_;
    self->enricher_.packet(ev->key, ev->ts_ns, std::span<const uint8_t>(ev->data, len));
    return 0;
}

int DnsRing::epoll_fd() const { return ring_buffer__epoll_fd(rb_); }

size_t DnsRing::poll() {
    int n = ring_buffer__consume(rb_);
    return n > 0 ? static_cast<size_t>(n) : 0;
}

}  // namespace bpfix
