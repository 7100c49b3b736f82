// ResponseWriter (the producer's handle) and the ResponseChannel it shares with the
// connection. User callbacks (on_cancel) and their destruction always run outside the
// channel's lock, so that they may call back into the writer.
#include "keel/server/response_channel.h"

#include <utility>

#include <spdlog/spdlog.h>

namespace keel::server {

HttpResponse HttpResponse::deferred(std::shared_ptr<ResponseWriter> writer) {
  if (!writer) return error(500, "internal", "the handler deferred its response to no writer");
  HttpResponse response;
  response.later = std::move(writer);
  return response;
}

ResponseWriter::ResponseWriter() : channel_(std::make_shared<ResponseChannel>()) {}
ResponseWriter::~ResponseWriter() { channel_->abandon(); }
void ResponseWriter::respond(HttpResponse response) { channel_->respond(std::move(response)); }
void ResponseWriter::begin(int status, std::string content_type, Headers headers) {
  channel_->begin(status, std::move(content_type), std::move(headers));
}
void ResponseWriter::write(std::string data) { channel_->write(std::move(data)); }
void ResponseWriter::end() { channel_->end(); }
bool ResponseWriter::cancelled() const { return channel_->cancelled(); }
void ResponseWriter::on_cancel(std::function<void()> callback) { channel_->on_cancel(std::move(callback)); }

void ResponseChannel::signal_locked() {
  if (notify_ && !notified_) {
    notified_ = true;
    notify_();
  }
}

void ResponseChannel::respond(HttpResponse response) {
  if (cancelled()) return;
  response.later.reset();  // a deferred response inside a response means nothing; drop it unlocked
  std::function<void()> released;
  {
    std::lock_guard lock(mutex_);
    if (cancelled()) return;
    if (finished_locked() || begun_) {
      spdlog::error("ResponseWriter::respond() after the response was {}; ignored", begun_ ? "begun" : "finished");
      return;
    }
    responded_ = true;
    whole_ = std::move(response);
    released = std::move(on_cancel_);
    signal_locked();
  }
}

void ResponseChannel::begin(int status, std::string content_type, Headers headers) {
  if (cancelled()) return;
  std::lock_guard lock(mutex_);
  if (cancelled()) return;
  if (finished_locked() || begun_) {
    spdlog::error("ResponseWriter::begin() after the response was {}; ignored", begun_ ? "begun" : "finished");
    return;
  }
  begun_ = true;
  head_ = Head{status, std::move(content_type), std::move(headers)};
  signal_locked();
}

void ResponseChannel::write(std::string data) {
  if (cancelled() || data.empty()) return;
  std::lock_guard lock(mutex_);
  if (cancelled()) return;
  if (!begun_ || finished_locked()) {
    spdlog::error("ResponseWriter::write() {}; ignored", begun_ ? "after end()" : "before begin()");
    return;
  }
  if (data_.empty()) {
    data_ = std::move(data);
  } else {
    data_ += data;
  }
  signal_locked();
}

void ResponseChannel::end() {
  if (cancelled()) return;
  std::function<void()> released;
  {
    std::lock_guard lock(mutex_);
    if (cancelled()) return;
    if (!begun_ || finished_locked()) {
      spdlog::error("ResponseWriter::end() {}; ignored", begun_ ? "called twice" : "before begin()");
      return;
    }
    ended_ = true;
    released = std::move(on_cancel_);
    signal_locked();
  }
}

void ResponseChannel::abandon() {
  std::function<void()> released;
  std::lock_guard lock(mutex_);
  released = std::move(on_cancel_);
  if (finished_locked()) return;
  abandoned_ = true;
  signal_locked();
  // `released` is destroyed after the lock: declared before the guard.
}

void ResponseChannel::on_cancel(std::function<void()> callback) {
  std::function<void()> released;
  {
    std::lock_guard lock(mutex_);
    if (!cancelled()) {
      if (!finished_locked()) {
        released = std::exchange(on_cancel_, std::move(callback));
      } else {
        released = std::move(callback);
      }
      return;
    }
  }
  if (callback) callback();
}

void ResponseChannel::attach(std::function<void()> notify) {
  std::lock_guard lock(mutex_);
  if (detached_) return;
  notify_ = std::move(notify);
  notified_ = false;
}

ResponseChannel::News ResponseChannel::take() {
  std::lock_guard lock(mutex_);
  News news;
  notified_ = false;
  if (whole_) {
    news.whole = std::move(*whole_);
    whole_.reset();
  }
  if (head_) {
    news.head = std::move(*head_);
    head_.reset();
  }
  news.data = std::move(data_);
  data_.clear();
  news.ended = ended_;
  news.abandoned = abandoned_;
  return news;
}

void ResponseChannel::cancel() {
  std::function<void()> callback;
  std::string dropped;
  {
    std::lock_guard lock(mutex_);
    if (cancelled()) return;
    cancelled_.store(true, std::memory_order_release);
    callback = std::move(on_cancel_);
    dropped = std::move(data_);
  }
  if (callback) callback();
}

void ResponseChannel::detach() {
  bool unfinished;
  std::function<void()> released;
  {
    std::lock_guard lock(mutex_);
    if (detached_) return;
    detached_ = true;
    released = std::move(notify_);
    unfinished = !finished_locked();
  }
  if (unfinished) cancel();
}

}  // namespace keel::server
