// ResponseChannel: the state a ResponseWriter (the producer, on any thread) shares with
// the connection that sends its response (the consumer, on the connection's strand).
// The producer's calls are recorded here; the consumer is told that there is news through
// a notify callback, takes it with take(), and reports back with cancel() and detach().
// Only the server includes this header; it has no Asio types either, so that it can be
// tested without a network. All methods are thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "keel/server/http.h"

namespace keel::server {

class ResponseChannel {
 public:
  // --- The producer's side; ResponseWriter forwards here (see its contract in http.h).
  void respond(HttpResponse response);
  void begin(int status, std::string content_type, Headers headers);
  void write(std::string data);
  void end();
  // The last ResponseWriter went away: an unfinished response is abandoned.
  void abandon();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  void on_cancel(std::function<void()> callback);

  // --- The consumer's side.
  struct Head {
    int status = 200;
    std::string content_type;
    Headers headers;
  };
  // What the producer did since the previous take().
  struct News {
    std::optional<HttpResponse> whole;  // respond(); given once
    std::optional<Head> head;           // begin(); given once
    std::string data;                   // the write()s since the previous take, in order
    bool ended = false;                 // end() was called; once data is sent the body is complete
    bool abandoned = false;             // the producer dropped its writer unfinished
    bool empty() const { return !whole && !head && data.empty() && !ended && !abandoned; }
  };

  // Sets the callback run whenever news arrives after a take() (once until the next
  // take()). It runs under the channel's lock, so it must only hand work off (post a
  // wake-up to the connection's strand) and never call back into the channel. The
  // consumer calls take() after attach() and before every wait, so that news recorded
  // before attach() or between a take() and its wait is never missed.
  void attach(std::function<void()> notify);
  News take();
  // The response is no longer wanted (client gone, shutdown, stall, HEAD): cancelled()
  // turns true, buffered data is dropped and the on_cancel callback, if any, runs here.
  // Later calls do nothing.
  void cancel();
  // The consumer is done with this response: no notify from now on, and a response the
  // producer has not finished is cancelled. Idempotent.
  void detach();

 private:
  // True when respond() or end() was called, or the writer was abandoned.
  // REQUIRES: mutex_ held.
  bool finished_locked() const { return responded_ || ended_ || abandoned_; }
  // Runs notify_ unless a notification is already outstanding. REQUIRES: mutex_ held.
  void signal_locked();

  std::atomic<bool> cancelled_{false};  // written under mutex_, read without it
  mutable std::mutex mutex_;            // guards everything below
  std::function<void()> notify_;        // empty until attach() and after detach()
  bool notified_ = false;               // notify_ ran since the last take()
  bool detached_ = false;
  std::function<void()> on_cancel_;
  bool responded_ = false;
  bool begun_ = false;
  bool ended_ = false;
  bool abandoned_ = false;
  std::optional<HttpResponse> whole_;  // not yet taken
  std::optional<Head> head_;           // not yet taken
  std::string data_;                   // written but not yet taken
};

}  // namespace keel::server
