// HTTP latencies on loopback, printed as medians, each next to the bare HTTP round trip of the
// same server measured in the same run (what the client adds over one request):
//   1. resources fetch (200, a 100-device resources.json, parsed and validated) and an unchanged
//      refetch (304 via If-None-Match), over one reused connection;
//   2. acquire+release of a named lock on a fake Lockable.dev service (two requests), and a whole
//      NamedLock (acquire, heartbeat thread start and stop, release).
// Usage: http_bench [iterations=2000]
#include <lockable/lockable.hpp>
#include <lockable/named_lock.hpp>

#include "http/client.hpp"
#include "lockable/test/http_server.hpp"
#include "lockable/test/lock_service.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double median_us(int iterations, const std::function<void()>& run) {
  for (int i = 0; i < std::min(50, iterations); ++i) run();  // warm up (connection, caches)
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(iterations));
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    run();
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

void print(const char* what, double us, double bare_us) {
  std::printf("%-58s median %8.1f us  (%.2fx the bare round trip)\n", what, us, us / bare_us);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;

  lockable::Json devices = lockable::Json::array();
  for (int i = 0; i < 100; ++i) {
    devices.push_back({{"id", "dut-" + std::to_string(i)},
                       {"online", true},
                       {"hostname", "bench-host"},
                       {"os", i % 2 ? "Android" : "iOS"}});
  }
  const std::string body = devices.dump();
  lockable::test::HttpServer inventory([&](httplib::Server& server) {
    server.Get("/ping", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok", "text/plain");
    });
    server.Get("/plain.json", [&](const httplib::Request&, httplib::Response& response) {
      response.set_content(body, "application/json");
    });
    server.Get("/tagged.json", [&](const httplib::Request& request, httplib::Response& response) {
      if (request.get_header_value("If-None-Match") == "\"v1\"") {
        response.status = 304;
        return;
      }
      response.set_header("ETag", "\"v1\"");
      response.set_content(body, "application/json");
    });
  });

  lockable::http::Client client;
  lockable::http::Request ping;
  ping.url = inventory.url("/ping");
  const double bare =
      median_us(iterations, [&] { client.send(ping, Clock::now() + std::chrono::seconds(10)); });
  std::printf("inventory server on 127.0.0.1:%d, %d iterations\n", inventory.port(), iterations);
  std::printf("%-58s median %8.1f us\n", "bare GET round trip (reused connection)", bare);

  lockable::UrlProviderOptions options;
  options.refetch_period = std::chrono::milliseconds(0);
  auto plain = lockable::make_url_provider(inventory.url("/plain.json"), options);
  print("resources fetch: 200, 100 devices, parsed + validated",
        median_us(iterations, [&] { plain->load(); }), bare);
  auto tagged = lockable::make_url_provider(inventory.url("/tagged.json"), options);
  tagged->load();
  print("resources refetch: 304 Not Modified (changed() == false)",
        median_us(iterations, [&] { tagged->changed(); }), bare);
  const int connections = inventory.connections();

  lockable::test::LockService service(std::chrono::seconds(60), "bench-token");
  lockable::LockServiceOptions service_options;
  service_options.base_url = service.base_url();
  service_options.token = "bench-token";
  auto store = lockable::make_lock_service_store(service_options);
  lockable::http::Client service_client;
  lockable::http::Request bare_call;
  bare_call.url = service.base_url() + "/release/bench-none";
  bare_call.basic_auth = std::make_pair(std::string("bench-token"), std::string());
  const double service_bare = median_us(
      iterations, [&] { service_client.send(bare_call, Clock::now() + std::chrono::seconds(10)); });
  std::printf("\nlock service on 127.0.0.1:%d\n", service.server().port());
  std::printf("%-58s median %8.1f us\n", "bare GET round trip of the service (reused connection)",
              service_bare);
  print("named lock try_acquire + try_release (two requests)",
        median_us(iterations,
                  [&] {
                    const auto deadline = Clock::now() + std::chrono::seconds(10);
                    if (!store->try_acquire("bench", deadline)) std::abort();
                    store->try_release("bench", deadline);
                  }),
        service_bare);
  lockable::NamedLockOptions lock_options;
  lock_options.blocking = false;
  print("NamedLock: acquire, heartbeat thread, release",
        median_us(iterations, [&] { lockable::NamedLock lock(store, "bench", lock_options); }),
        service_bare);
  std::printf("\n(inventory: %d connections for all its requests)\n", connections);
  return 0;
}
