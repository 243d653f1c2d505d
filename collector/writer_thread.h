#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bpfix {

// The thread an output format writes on, so that disk latency (fsync,
// rotation) never blocks receiving: receiving threads push items, the
// thread takes them in batches and hands each batch to `process`. Bounded:
// push() refuses items beyond `max_queued_bytes` (the caller counts them).
// Declare it after everything `process` uses: its thread starts at once.
template <typename Item>
class WriterThread {
public:
    // Runs on the thread: a batch (maybe empty, every 100 ms at least), and
    // whether a rotation was asked for or the thread is stopping (last call).
    using Process = std::function<void(std::deque<Item>& batch, bool rotate, bool stop)>;

    WriterThread(uint64_t max_queued_bytes, Process process)
        : max_queued_(max_queued_bytes),
          wake_bytes_(std::min<uint64_t>(kWakeBytes, max_queued_bytes / 4)),
          process_(std::move(process)),
          thread_([this] { run(); }) {}
    ~WriterThread() { stop(); }
    WriterThread(const WriterThread&) = delete;
    WriterThread& operator=(const WriterThread&) = delete;

    // Wakes the thread only once a batch worth writing has gathered (it
    // also wakes every kMaxDelay): a wake-up per item cost a context switch
    // per IPFIX message when the receiving thread shares its CPU.
    bool push(Item item, uint64_t bytes) {
        bool wake;
        {
            std::lock_guard lock(mu_);
            if (stopping_ || queued_bytes_ + bytes > max_queued_) return false;
            queued_bytes_ += bytes;
            queue_.push_back(std::move(item));
            wake = waiting_ && queued_bytes_ >= wake_bytes_;
            if (wake) waiting_ = false;
        }
        if (wake) cv_.notify_one();
        return true;
    }
    // Like push(), but first offers the item to `merge` with the last item
    // queued (not yet taken by the thread): when it returns true, the
    // bytes went into that one (small items gathered into one buffer).
    template <typename Merge, typename Make>
    bool push_merged(uint64_t bytes, Merge merge, Make make) {
        bool wake;
        {
            std::lock_guard lock(mu_);
            if (stopping_ || queued_bytes_ + bytes > max_queued_) return false;
            queued_bytes_ += bytes;
            if (queue_.empty() || !merge(queue_.back())) queue_.push_back(make());
            wake = waiting_ && queued_bytes_ >= wake_bytes_;
            if (wake) waiting_ = false;
        }
        if (wake) cv_.notify_one();
        return true;
    }
    // Asks for a rotation; `after` (a reload's new settings) runs on the
    // thread once the files are finished, before the next batch opens any.
    void rotate_now(std::function<void()> after = {}) {
        {
            std::lock_guard lock(mu_);
            rotate_ = true;
            if (after) tasks_.push_back(std::move(after));
        }
        cv_.notify_one();
    }
    // Stops accepting; the thread processes what was queued, then ends.
    void stop() {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        for (;;) {
            std::deque<Item> batch;
            std::vector<std::function<void()>> tasks;
            bool stop = false, rotate = false;
            {
                std::unique_lock lock(mu_);
                waiting_ = true;
                cv_.wait_for(lock, kMaxDelay, [this] { return stopping_ || rotate_ || queued_bytes_ >= wake_bytes_; });
                waiting_ = false;
                batch.swap(queue_);
                queued_bytes_ = 0;
                stop = stopping_;
                rotate = rotate_;
                rotate_ = false;
                tasks.swap(tasks_);
            }
            process_(batch, rotate, stop);
            for (auto& t : tasks) t();
            if (stop) return;
        }
    }

    static constexpr uint64_t kWakeBytes = 1 << 20;
    static constexpr std::chrono::milliseconds kMaxDelay{100};

    uint64_t max_queued_;
    uint64_t wake_bytes_;  // queued bytes that wake the thread before kMaxDelay
    Process process_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Item> queue_;
    uint64_t queued_bytes_ = 0;
    bool stopping_ = false, rotate_ = false, waiting_ = false;
    std::vector<std::function<void()>> tasks_;  // run on the thread after the rotation asked with them
    std::thread thread_;  // last: starts once the rest exists
};

}  // namespace bpfix
