#include "thread_pool.h"

#include <chrono>

namespace seatok {
namespace {

// Batches often come back to back (a server's queue, a bulk job): a thread that just finished
// keeps checking for this long before it sleeps, since a futex wake-up costs tens of
// microseconds on a VM, as much as encoding a few texts.
constexpr auto kSpin = std::chrono::microseconds(200);

template <typename Ready>
bool spin_until(Ready ready) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    do {
        for (int i = 0; i < 64; ++i) {
            if (ready()) return true;
            std::this_thread::yield();
        }
    } while (std::chrono::steady_clock::now() < deadline);
    return ready();
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_.store(true);
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run(const std::function<void(int)>& body) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = &body;
        pending_.store(static_cast<int>(workers_.size()));
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    body(0);
    if (spin_until([this] { return pending_.load() == 0; })) return;
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_.load() == 0; });
}

void ThreadPool::work(int index) {
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int)>* job;
        {
            spin_until([&] { return stopping_.load() || generation_.load() != seen; });
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_.load() || generation_.load() != seen; });
            if (stopping_.load()) return;
            seen = generation_.load();
            job = job_;
        }
        (*job)(index);
        if (pending_.fetch_sub(1) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);  // the waiter checks pending_ under this lock
            done_.notify_one();
        }
    }
}

}  // namespace seatok
