#include "runtime/http_client.hpp"
#include "runtime/http_client_pool.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

// Design
// ------
// The client is split by job: this file is the facade (I/O threads, TLS context, one pool per
// origin, send() and stop()); http_client_pool.* queues jobs for an origin's connections,
// all on the pool's strand; http_client_connection.* runs one exchange, plain or TLS;
// http_client_job.* is one request with its deadlines and its callback.
//
// send() parses the URL on the caller's thread, builds the Beast request and posts the job to
// the pool's strand. Every job owns the user's callback and fires it exactly once: normally
// with the result, and from its destructor (as `reset`) when the job is dropped at shutdown.
// stop() fails queued and running work, waits a bounded time for callbacks, then stops the
// io_context; whatever is left reports `reset` as it is destroyed.

namespace lps {

void http_call_cancel::cancel() {
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock{mutex_};
    if (cancelled_)
      return;
    cancelled_ = true;
    hook = hook_;
  }
  if (hook) // outside the lock: it takes the client's
    hook();
}

bool http_call_cancel::cancelled() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return cancelled_;
}

void http_call_cancel::set_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock{mutex_};
  hook_ = std::move(hook);
}

void http_call_cancel::clear_hook() {
  std::lock_guard<std::mutex> lock{mutex_};
  hook_ = nullptr;
}

namespace {

using http_client_detail::clock_type;
using http_client_detail::error_code;
using http_client_detail::failure;
using http_client_detail::job;
using http_client_detail::pool;
using http_client_detail::tracker;
namespace net = http_client_detail::net;
namespace ssl = http_client_detail::ssl;

/// How long stop() waits for outstanding callbacks before tearing the io_context down.
constexpr std::chrono::seconds stop_grace{2};

} // namespace

struct http_client::impl {
  explicit impl(const http_client_options& o)
      : options(o), ioc(static_cast<int>(std::max(1u, o.io_threads))),
        tls(ssl::context::tls_client) {
    setup_tls();
    work.emplace(net::make_work_guard(*ioc));
    for (unsigned i = 0; i < std::max(1u, o.io_threads); ++i)
      threads.emplace_back([this] { run_thread(); });
  }

  void setup_tls() {
    error_code ec;
    tls.set_default_verify_paths(ec);
    if (ec)
      spdlog::warn("http client: cannot load the system CA store: {}", ec.message());
    if (!options.ca_file.empty()) {
      tls.load_verify_file(options.ca_file, ec);
      if (ec)
        spdlog::error("http client: cannot load CA file {}: {}", options.ca_file, ec.message());
    }
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    tls.set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none);
  }

  void run_thread() {
    for (;;) {
      try {
        ioc->run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http client: I/O thread caught: {}", e.what());
      }
    }
  }

  bool on_io_thread() const {
    auto self = std::this_thread::get_id();
    return std::any_of(threads.begin(), threads.end(),
                       [self](const std::thread& t) { return t.get_id() == self; });
  }

  /// Single-threaded after the join. Dropped jobs report `reset` from their destructors.
  void tear_down() {
    if (!track.wait_idle(stop_grace))
      spdlog::warn("http client: stopping with requests still outstanding");
    ioc->stop();
    for (auto& t : threads)
      t.join();
    threads.clear();
    {
      std::lock_guard<std::mutex> lock{mutex};
      pools.clear();
    }
    ioc.reset();
  }

  std::shared_ptr<pool> pool_for(const http_url& url) {
    auto& p = pools[url.origin()];
    if (!p)
      p = std::make_shared<pool>(*ioc, tls, options, url);
    return p;
  }

  http_client_options options;
  // The io_context must outlive every I/O object (pools, connections, queued handlers).
  std::optional<net::io_context> ioc;
  ssl::context tls;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  tracker track;
  std::mutex mutex;
  bool stopped = false;                                         // guarded by mutex
  std::unordered_map<std::string, std::shared_ptr<pool>> pools; // guarded by mutex
  std::mutex teardown;    // the joining half of stop(); never taken on an I/O thread
  bool torn_down = false; // guarded by teardown
};

http_client::http_client(const http_client_options& options)
    : impl_(std::make_unique<impl>(options)) {}

http_client::~http_client() {
  stop();
}

void http_client::send(http_client_request request, http_client_callback done) {
  auto j = std::make_unique<job>(std::move(done), impl_->track);
  std::string why;
  auto url = parse_http_url(request.url, why);
  j->timeout = request.timeout;
  j->queue_deadline =
      clock_type::now()
      + (request.queue_timeout.count() > 0 ? request.queue_timeout : request.timeout);
  if (request.max_response_bytes > 0)
    j->max_body = request.max_response_bytes;
  j->on_body_data = std::move(request.on_body_data);
  j->cancel = std::move(request.cancel);
  if (url) {
    try {
      build_request(*j, *url, request);
    } catch (const std::exception& e) {
      why = std::string("bad request: ") + e.what();
      url.reset();
    }
  }
  std::unique_lock<std::mutex> lock{impl_->mutex};
  if (impl_->stopped) {
    lock.unlock();
    return j->finish(failure(transport_error::reset, "http client stopped"));
  }
  if (!url) {
    // Answer on a client thread like every other outcome.
    net::post(*impl_->ioc, [j = std::move(j), why = std::move(why)]() mutable {
      j->finish(failure(transport_error::invalid, std::move(why)));
    });
    return;
  }
  auto p = impl_->pool_for(*url);
  if (j->cancel) {
    // The hook holds the pool weakly and checks `stopped` under the client's mutex, so a
    // cancel after stop() (when the io_context may be gone) posts nothing. Set under that
    // mutex already: cancel() runs the hook outside its own lock, then takes this one.
    j->cancel->set_hook([impl = impl_.get(), weak = std::weak_ptr<pool>(p)] {
      std::lock_guard<std::mutex> guard{impl->mutex};
      auto strong = weak.lock();
      if (impl->stopped || !strong)
        return;
      net::post(strong->strand(), [strong] { strong->cancel_flagged(); });
    });
  }
  net::post(p->strand(), [p, j = std::move(j)]() mutable { p->submit(std::move(j)); });
}

// From a callback (an I/O thread, which cannot join itself) stop() only fails the work; the
// destructor or a later stop() from another thread finishes the job.
void http_client::stop() {
  {
    std::lock_guard<std::mutex> lock{impl_->mutex};
    if (!impl_->stopped) {
      impl_->stopped = true;
      for (auto& [key, p] : impl_->pools)
        net::post(p->strand(), [p = p] { p->shutdown(); });
      impl_->work.reset(); // after the posts, so the threads see the shutdowns
    }
  }
  if (impl_->on_io_thread()) {
    spdlog::warn("http client: stop() called from a callback; finishing later");
    return;
  }
  std::lock_guard<std::mutex> guard{impl_->teardown};
  if (impl_->torn_down)
    return;
  impl_->torn_down = true;
  impl_->tear_down();
}

} // namespace lps
