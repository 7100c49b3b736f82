// IoExecutor: where a request's connection runs (its strand on the server's io_context).
// The server hands it to handlers in HttpRequest::io; work a handler starts on it (an
// upstream call, see UpstreamClient::start) runs on the server's own I/O threads and in
// step with the connection, with no hand-off to another thread and back. Only the
// server's own .cpp files include this header: it carries Asio's types.
#pragma once

#include <boost/asio/any_io_executor.hpp>

namespace keel::server {

struct IoExecutor {
  boost::asio::any_io_executor executor;
};

}  // namespace keel::server
