// TCP and SCTP export: messages on one stream (for SCTP: one association,
// every message on stream 0, so templates precede the data that uses them
// on the same stream, RFC 7011 section 10.2), reconnect with exponential
// backoff, a bounded queue while the collector is away (oldest dropped and
// counted when it overflows). Each new connection starts with the
// templates, and sequence numbers are rewritten per connection so every
// session is consistent from its first message. With a lifetime set,
// SCTP data messages go partially reliably (PR-SCTP, RFC 3758): given up
// when not delivered in time, which the collector sees as a sequence gap;
// templates always go fully reliably.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <array>
#include <deque>
#include <map>
#include <optional>
#include <type_traits>

#include "error.h"
#include "sctp.h"
#include "transport.h"

namespace bpfix {
namespace {

template <typename Protocol>
class StreamTransport : public Transport {
public:
    StreamTransport(const CollectorUrl& url, const TransportOptions& opts, asio::io_context& io,
                 TemplateSource templates)
        : io_(io), url_(url), opts_(opts), templates_(std::move(templates)), socket_(io), timer_(io),
          backoff_(opts.reconnect_min) {
        name_ = url.str();
        connect();
    }

    ~StreamTransport() override {
        asio::error_code ec;
        socket_.close(ec);
        timer_.cancel();
    }

    void send(IpfixMessage&& msg) override {
        if (msg.templates) {
            return;  // templates go first on every connection, from templates_()
        }
        queued_bytes_ += msg.bytes.size();
        queue_.push_back(std::move(msg));
        while (queued_bytes_ > opts_.queue_bytes && queue_.size() > (writing_ ? 1u : 0u)) {
            // Keep the message being written; drop the oldest after it.
            auto victim = queue_.begin() + (writing_ ? 1 : 0);
            queued_bytes_ -= victim->bytes.size();
            records_not_sent_ += victim->data_records;
            ++dropped_messages_;
            queue_.erase(victim);
        }
        if (dropped_messages_ && !warned_drop_) {
            spdlog::error("collector {}: send queue full ({} bytes) while the collector is unreachable; dropping "
                          "the oldest messages (counted as not sent)",
                          name_, opts_.queue_bytes);
            warned_drop_ = true;
        }
        write_next();
    }

    bool ready() const override {
        if (state_ == State::connecting) return false;
        if (state_ == State::connected) return queued_bytes_ < opts_.queue_bytes / 2;
        return true;  // collector away: keep going, the queue bounds memory
    }

    bool connected() const override { return state_ == State::connected; }
    size_t queued_bytes() const override { return queued_bytes_; }

    bool finish(asio::io_context& io, std::chrono::milliseconds timeout) override {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while ((!queue_.empty() || writing_) && std::chrono::steady_clock::now() < deadline) {
            io.run_one_for(std::chrono::milliseconds(100));
        }
        for (const auto& m : queue_) {
            // Template messages carry type records, counted once by
            // confirm_delivery() when no connection took them.
            if (!m.templates) records_not_sent_ += m.data_records;
        }
        if (!queue_.empty()) {
            spdlog::error("collector {}: {} messages could not be delivered before exit", name_, queue_.size());
        }
        queue_.clear();
        queued_bytes_ = 0;
        confirm_delivery(io, deadline);
        closing_ = true;
        count_abandoned();
        if (abandoned_ > 0) {
            spdlog::warn("collector {}: PR-SCTP gave up {} messages not delivered within their lifetime ({} ms); the "
                         "collector counts their records as lost from the sequence numbers",
                         name_, abandoned_, opts_.sctp_lifetime.count());
        }
        asio::error_code ec;
        socket_.close(ec);
        timer_.cancel();
        return records_not_sent_ == 0;
    }

    uint16_t max_message_size() const override { return 65000; }

private:
    enum class State { connecting, connected, backoff };

    // A connection is on probation for its first kProbation: a collector
    // that refuses it (allow list, connection limits) closes it at once,
    // and what was written into it meanwhile went nowhere. IPFIX over TCP
    // has no acknowledgement, so the records written on a connection that
    // ends within its probation are counted as not sent (they are not sent
    // again: the collector may have stored some before it ended).
    static constexpr std::chrono::seconds kProbation{2};

    bool on_probation() const { return std::chrono::steady_clock::now() - connected_at_ < kProbation; }

    // The connection ended (`why`): records written while it was on
    // probation count as not sent.
    void count_unconfirmed(const std::string& why) {
        if (unconfirmed_records_ == 0) return;
        records_not_sent_ += unconfirmed_records_;
        spdlog::error("collector {}: {} {:.1f} s after it was made; the {} records written on it are counted as "
                      "not sent (a collector that refuses an exporter closes the connection at once: check its "
                      "[listen] allow and [limits])",
                      name_, why,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - connected_at_).count(),
                      unconfirmed_records_);
        unconfirmed_records_ = 0;
    }

    // At the end of an export: what reached no collector is counted.
    void confirm_delivery(asio::io_context& io, std::chrono::steady_clock::time_point deadline) {
        await_collector_end(io, deadline);
        if (!templates_confirmed_) {
            // The records that go with the templates on every connection
            // (RFC 5610 type records) reached no collector either.
            for (const auto& m : templates_()) records_not_sent_ += m.data_records;
        }
    }

    // Our side of the connection is shut down and the collector's end
    // awaited. A collector reads to the end and then closes its side (end
    // of file): everything was read. A reset, or no answer by `deadline`
    // while on probation, leaves the records written on probation
    // unconfirmed.
    void await_collector_end(asio::io_context& io, std::chrono::steady_clock::time_point deadline) {
        if (state_ != State::connected || !socket_.is_open()) return;
        finishing_ = true;
        asio::error_code ec;
        socket_.shutdown(asio::socket_base::shutdown_send, ec);
        // SCTP has no half-closed state: the shutdown is the association's
        // graceful end, in which the stack delivers everything accepted
        // (the collector has nothing to answer).
        if (std::is_same_v<Protocol, sctp> || !on_probation()) {
            // It outlived its probation: nothing left to confirm (and a
            // collector that never closes does not hold up the exit).
            templates_confirmed_ = true;
            unconfirmed_records_ = 0;
            return;
        }
        // At least a moment for the answer, even when the queue took the whole timeout.
        deadline = std::max(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
        while (!peer_end_ && std::chrono::steady_clock::now() < deadline) {
            io.run_one_for(std::chrono::milliseconds(50));
        }
        if (peer_end_ && *peer_end_ == asio::error::eof) {
            unconfirmed_records_ = 0;
            templates_confirmed_ = true;
        } else if (peer_end_) {
            count_unconfirmed("closed by the collector at the end (" + peer_end_->message() + ")");
        } else if (on_probation()) {
            count_unconfirmed("not closed by the collector in time at the end");
        }
    }

    void connect() {
        state_ = State::connecting;
        asio::ip::tcp::resolver resolver(io_);  // names resolve alike for TCP and SCTP
        asio::error_code ec;
        auto results = resolver.resolve(url_.host, std::to_string(url_.port), ec);
        if (ec) {
            retry(fmt::format("cannot resolve '{}': {}", url_.host, ec.message()));
            return;
        }
        std::vector<typename Protocol::endpoint> endpoints;
        for (const auto& r : results) endpoints.emplace_back(r.endpoint().address(), r.endpoint().port());
        asio::async_connect(socket_, endpoints,
                            [this](const asio::error_code& error, const typename Protocol::endpoint&) {
                                if (closing_) return;
                                if (error) {
                                    retry(error.message());
                                    return;
                                }
                                on_connected();
                            });
    }

    void retry(const std::string& why) {
        count_abandoned();
        asio::error_code ec;
        socket_.close(ec);
        state_ = State::backoff;
        spdlog::warn("collector {}: {}; retrying in {:.1f} s", name_, why, backoff_.count() / 1000.0);
        timer_.expires_after(backoff_);
        backoff_ = std::min(backoff_ * 2, opts_.reconnect_max);
        timer_.async_wait([this](const asio::error_code& error) {
            if (!error && !closing_) connect();
        });
    }

    void on_connected() {
        asio::error_code ec;
        socket_.set_option(typename Protocol::no_delay(true), ec);
        spdlog::info("collector {}: connected ({})", name_, StreamName<Protocol>::label);
        ++connects_;
        state_ = State::connected;
        backoff_ = opts_.reconnect_min;
        seq_.clear();
        connected_at_ = std::chrono::steady_clock::now();
        unconfirmed_records_ = 0;
        if constexpr (std::is_same_v<Protocol, sctp>) {
            lifetime_now_ = 0;
            abandoned_now_ = 0;
            partial_ = opts_.sctp_lifetime.count() > 0 && sctp_pr_supported(socket_.native_handle());
            if (opts_.sctp_lifetime.count() > 0 && !partial_) {
                spdlog::warn("collector {}: the association has no PR-SCTP (the collector's kernel did not agree, or "
                             "net.sctp.prsctp_enable is 0); every message goes fully reliably",
                             name_);
            }
        }
        watch_peer(++generation_);
        // Templates first on this connection, then whatever is queued.
        const auto& tmpl = templates_();
        for (auto it = tmpl.rbegin(); it != tmpl.rend(); ++it) {
            IpfixMessage copy = *it;
            copy.templates = true;
            queued_bytes_ += copy.bytes.size();
            queue_.push_front(std::move(copy));
        }
        write_next();
    }

    // A collector sends nothing on an IPFIX connection: a read that ends
    // means it closed or reset the connection. Noticing now, not at the
    // second write after, keeps messages out of a dead socket (the first
    // write into one succeeds locally and is lost uncounted).
    void watch_peer(uint64_t generation) {
        socket_.async_read_some(asio::buffer(peer_bytes_), [this, generation](const asio::error_code& error, size_t) {
            if (closing_ || generation != generation_ || state_ != State::connected) return;
            if (error && finishing_) {
                peer_end_ = error;
                return;
            }
            if (error) {
                state_ = State::backoff;
                if (on_probation()) {
                    count_unconfirmed(error == asio::error::eof ? "the collector closed the connection"
                                                                : "the connection was lost (" + error.message() + ")");
                }
                drop_templates_from_queue_unless_writing();
                retry(error == asio::error::eof ? "the collector closed the connection"
                                                : "connection lost: " + error.message());
                return;
            }
            watch_peer(generation);  // unexpected bytes: ignored
        });
    }

    void drop_templates_from_queue_unless_writing() {
        // A write in flight is aborted by the close in retry() and its
        // handler leaves its message at the front: it is sent again, whole.
        if (!writing_) drop_templates_from_queue();
    }

    void write_next() {
        if (state_ != State::connected || writing_ || queue_.empty()) return;
        IpfixMessage& msg = queue_.front();
        set_sequence_number(msg.bytes, seq_[domain_of(msg)]);
        if (partial_) {
            // Templates (and the type records with them) must never be lost.
            auto want = msg.templates ? 0u : static_cast<uint32_t>(opts_.sctp_lifetime.count());
            if (want != lifetime_now_ && sctp_set_lifetime(socket_.native_handle(), want)) lifetime_now_ = want;
        }
        writing_ = true;
        asio::async_write(socket_, asio::buffer(msg.bytes), [this](const asio::error_code& error, size_t) {
            writing_ = false;
            if (closing_) return;
            if (error && state_ != State::connected) {
                // The peer watch saw the connection end and closed the
                // socket under this write: already retrying.
                drop_templates_from_queue();
                return;
            }
            if (error) {
                // The message in flight is sent again, whole, on the next
                // connection: the collector discards the partial one with
                // the old session.
                state_ = State::backoff;
                if (on_probation()) count_unconfirmed("the connection was lost (" + error.message() + ")");
                drop_templates_from_queue();
                retry("connection lost: " + error.message());
                return;
            }
            IpfixMessage& done = queue_.front();
            if (state_ != State::connected) {
                // The peer watch saw this connection end while the write was
                // in flight, and the write still completed: into a dead
                // connection. Data counts as not sent (not sent again, as on
                // probation); the rest of that connection's templates leave
                // the queue (the next connection sends its own, and left
                // there they piled up, one set per reconnect).
                if (!done.templates) records_not_sent_ += done.data_records;
                queued_bytes_ -= done.bytes.size();
                queue_.pop_front();
                drop_templates_from_queue();
                return;
            }
            if (partial_) {
                if (int64_t n = sctp_abandoned(socket_.native_handle()); n >= 0) abandoned_now_ = static_cast<uint64_t>(n);
            }
            seq_[domain_of(done)] += done.data_records;
            if (on_probation()) {
                // Templates (and their type records) go again on every connection.
                if (!done.templates) unconfirmed_records_ += done.data_records;
            } else {
                unconfirmed_records_ = 0;  // the connection outlived its probation
                templates_confirmed_ = true;
            }
            queued_bytes_ -= done.bytes.size();
            if (!done.templates) ++messages_sent_;
            queue_.pop_front();
            write_next();
        });
    }

    // Adds this association's abandoned messages to the total, once.
    void count_abandoned() {
        if (!partial_) return;
        if (int64_t n = sctp_abandoned(socket_.native_handle()); n >= 0) abandoned_now_ = static_cast<uint64_t>(n);
        abandoned_ += abandoned_now_;
        abandoned_now_ = 0;
        partial_ = false;
    }

    void drop_templates_from_queue() {
        while (!queue_.empty() && queue_.front().templates) {
            queued_bytes_ -= queue_.front().bytes.size();
            queue_.pop_front();
        }
    }

    asio::io_context& io_;
    CollectorUrl url_;
    TransportOptions opts_;
    TemplateSource templates_;
    typename Protocol::socket socket_;
    asio::steady_timer timer_;
    std::chrono::milliseconds backoff_;
    State state_ = State::connecting;
    uint64_t generation_ = 0;  // connections so far: a late handler of an old one is ignored
    std::array<char, 256> peer_bytes_{};
    std::deque<IpfixMessage> queue_;
    size_t queued_bytes_ = 0;
    bool writing_ = false;
    bool closing_ = false;
    bool finishing_ = false;  // our side shut down: the peer's end is awaited
    std::optional<asio::error_code> peer_end_;
    std::chrono::steady_clock::time_point connected_at_;
    uint64_t unconfirmed_records_ = 0;  // written on this connection while on probation
    bool templates_confirmed_ = false;   // some connection outlived its probation or ended cleanly
    bool warned_drop_ = false;
    // PR-SCTP on the current association: in use, the lifetime set on the
    // socket now, messages given up so far on it and on earlier ones.
    bool partial_ = false;
    uint32_t lifetime_now_ = 0;
    uint64_t abandoned_now_ = 0;
    uint64_t abandoned_ = 0;
    uint64_t dropped_messages_ = 0;
    // Sequence numbers count data records per observation domain
    // (RFC 7011 section 3.1), from 0 on each connection.
    std::map<uint32_t, uint32_t> seq_;
    static uint32_t domain_of(const IpfixMessage& m) {
        if (m.bytes.size() < 16) return 0;
        return static_cast<uint32_t>(m.bytes[12]) << 24 | static_cast<uint32_t>(m.bytes[13]) << 16 |
               static_cast<uint32_t>(m.bytes[14]) << 8 | m.bytes[15];
    }
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport(const CollectorUrl& url, const TransportOptions& opts,
                                              asio::io_context& io, Transport::TemplateSource templates) {
    return std::make_unique<StreamTransport<asio::ip::tcp>>(url, opts, io, std::move(templates));
}

std::unique_ptr<Transport> make_sctp_transport(const CollectorUrl& url, const TransportOptions& opts,
                                               asio::io_context& io, Transport::TemplateSource templates) {
    if (std::string why = sctp_unavailable(); !why.empty()) {
        throw Error(fmt::format("collector {}: {}", url.str(), why));
    }
    return std::make_unique<StreamTransport<sctp>>(url, opts, io, std::move(templates));
}

}  // namespace bpfix
