// Resources from a URL against a real HTTP server on 127.0.0.1: 200, 304 with ETag and
// Last-Modified, 404, 500 then 200, invalid JSON, a stalled server, a redirect, devices that come
// online while a caller waits, a failed refetch, and credentials that never show.
#include <lockable/lockable.hpp>

#include "lockable/test/files.hpp"
#include "lockable/test/http_server.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

namespace lockable {
namespace {

using namespace std::chrono_literals;
using test::HttpServer;

const char* const kOne = R"([{"id": "dut-1", "online": true, "hostname": "h"}])";
const char* const kTwo =
    R"([{"id": "dut-1", "online": true, "hostname": "h"}, {"id": "dut-2", "online": true, "hostname": "h"}])";

// A resources endpoint whose body and behaviour the test changes while it runs.
struct Inventory {
  std::mutex mutex;
  std::string body = kOne;
  std::string etag = "\"v1\"";
  int status = 200;
  std::atomic<int> gets{0};
  std::atomic<int> not_modified{0};
  std::string last_authorization;

  HttpServer::Configure routes() {
    return [this](httplib::Server& server) {
      server.Get("/resources.json",
                 [this](const httplib::Request& request, httplib::Response& response) {
                   ++gets;
                   std::lock_guard<std::mutex> lock(mutex);
                   last_authorization = request.get_header_value("Authorization");
                   if (status != 200) {
                     response.status = status;
                     response.set_content("inventory is down", "text/plain");
                     return;
                   }
                   if (!etag.empty() && request.get_header_value("If-None-Match") == etag) {
                     ++not_modified;
                     response.status = 304;
                     return;
                   }
                   if (!etag.empty()) response.set_header("ETag", etag);
                   response.set_content(body, "application/json");
                 });
    };
  }
  void set(std::string new_body, std::string new_etag) {
    std::lock_guard<std::mutex> lock(mutex);
    body = std::move(new_body);
    etag = std::move(new_etag);
  }
};

UrlProviderOptions quick() {
  UrlProviderOptions options;
  options.refetch_period = 0ms;
  options.timeout = 3s;
  return options;
}

std::string error_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const std::exception& error) {
    return error.what();
  }
  return "";
}

TEST(HttpResources, LoadsAndValidatesAListLikeAFile) {
  Inventory inventory;
  HttpServer server(inventory.routes());
  auto provider = make_url_provider(server.url("/resources.json"), quick());
  const auto resources = provider->load();
  ASSERT_EQ(resources.size(), 1u);
  EXPECT_EQ(resources[0].id, "dut-1");
  EXPECT_EQ(provider->describe(), server.url("/resources.json"));
}

TEST(HttpResources, AnUnchangedListCostsA304AndIsNotAChange) {
  Inventory inventory;
  HttpServer server(inventory.routes());
  auto provider = make_url_provider(server.url("/resources.json"), quick());
  provider->load();
  EXPECT_FALSE(provider->changed());
  EXPECT_EQ(inventory.not_modified, 1) << "If-None-Match was not sent";
  inventory.set(kTwo, "\"v2\"");
  EXPECT_TRUE(provider->changed());
  EXPECT_EQ(provider->load().size(), 2u);
  EXPECT_EQ(inventory.gets, 3) << "changed() fetched, load() used what it fetched";
}

TEST(HttpResources, LastModifiedIsSentBackWhenTheServerGivesIt) {
  std::string since;
  HttpServer server([&](httplib::Server& s) {
    s.Get("/r", [&](const httplib::Request& request, httplib::Response& response) {
      since = request.get_header_value("If-Modified-Since");
      if (!since.empty()) {
        response.status = 304;
        return;
      }
      response.set_header("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT");
      response.set_content(kOne, "application/json");
    });
  });
  auto provider = make_url_provider(server.url("/r"), quick());
  provider->load();
  EXPECT_FALSE(provider->changed());
  EXPECT_EQ(since, "Tue, 01 Dec 2026 10:00:00 GMT");
}

TEST(HttpResources, RefetchesAtMostOncePerPeriod) {
  Inventory inventory;
  HttpServer server(inventory.routes());
  auto options = quick();
  options.refetch_period = 1h;
  auto provider = make_url_provider(server.url("/resources.json"), options);
  provider->load();
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(provider->changed());
  provider->load();
  EXPECT_EQ(inventory.gets, 1);
}

TEST(HttpResources, ErrorsNameTheUrlTheStatusAndTheBody) {
  HttpServer server([](httplib::Server& s) {
    s.Get("/missing", [](const httplib::Request&, httplib::Response& response) {
      response.status = 404;
      response.set_content("no such inventory", "text/plain");
    });
    s.Get("/bad", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("[{\"id\": \"dut-1\", ", "application/json");
    });
    s.Get("/invalid", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(R"([{"online": true}])", "application/json");
    });
  });
  const auto missing =
      error_of([&] { make_url_provider(server.url("/missing"), quick())->load(); });
  EXPECT_NE(missing.find(server.url("/missing")), std::string::npos) << missing;
  EXPECT_NE(missing.find("404"), std::string::npos) << missing;
  EXPECT_NE(missing.find("no such inventory"), std::string::npos) << missing;
  const auto bad = error_of([&] { make_url_provider(server.url("/bad"), quick())->load(); });
  EXPECT_NE(bad.find(server.url("/bad")), std::string::npos) << bad;
  try {
    make_url_provider(server.url("/invalid"), quick())->load();
    FAIL() << "an entry without id was accepted";
  } catch (const ResourcesError& error) {
    EXPECT_EQ(error.source(), server.url("/invalid"));
    EXPECT_NE(std::string(error.what()).find("id"), std::string::npos) << error.what();
  }
}

TEST(HttpResources, A500ThenA200IsRetriedInsideTheTimeout) {
  std::atomic<int> calls{0};
  HttpServer server([&](httplib::Server& s) {
    s.Get("/r", [&](const httplib::Request&, httplib::Response& response) {
      if (++calls == 1) {
        response.status = 500;
        return;
      }
      response.set_content(kOne, "application/json");
    });
  });
  EXPECT_EQ(make_url_provider(server.url("/r"), quick())->load().size(), 1u);
  EXPECT_EQ(calls, 2);
}

TEST(HttpResources, AStalledServerEndsInAnErrorNamingTheUrl) {
  std::atomic<bool> release{false};
  HttpServer server([&](httplib::Server& s) {
    s.Get("/slow", [&](const httplib::Request&, httplib::Response& response) {
      for (int i = 0; i < 500 && !release; ++i) std::this_thread::sleep_for(10ms);
      response.set_content(kOne, "application/json");
    });
  });
  auto options = quick();
  options.timeout = 500ms;
  const auto what = error_of([&] { make_url_provider(server.url("/slow"), options)->load(); });
  release = true;
  EXPECT_NE(what.find(server.url("/slow")), std::string::npos) << what;
  EXPECT_NE(what.find("timed out"), std::string::npos) << what;
}

// A sick inventory server must not outlast the wait the user asked for: the first fetch's
// retries end with Lockable's timeout (the provider's own bound is 30 s).
TEST(HttpResources, TheFirstFetchOfASickServerEndsWithLockablesTimeout) {
  Inventory inventory;
  inventory.status = 503;
  HttpServer server(inventory.routes());
  test::TempDir dir;
  Options options;
  options.resources = server.url("/resources.json");
  options.lock_backend = (dir.path() / "locks").string();
  options.hostname = "h";
  options.default_timeout = Seconds(1);
  const auto started = std::chrono::steady_clock::now();
  const auto what = error_of([&] { Lockable(options).lock("id=dut-1"); });
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_NE(what.find(server.url("/resources.json")), std::string::npos) << what;
  EXPECT_NE(what.find("503"), std::string::npos) << what;
  // Generous: the old code retried for about 29 s.
  EXPECT_LT(took, 15s) << what;
  EXPECT_GE(inventory.gets, 2) << "a sick server still gets its retries within the timeout";
}

TEST(HttpResources, FollowsARedirect) {
  Inventory inventory;
  HttpServer server([&](httplib::Server& s) {
    inventory.routes()(s);
    s.Get("/old", [](const httplib::Request&, httplib::Response& response) {
      response.set_redirect("/resources.json");
    });
  });
  EXPECT_EQ(make_url_provider(server.url("/old"), quick())->load().size(), 1u);
}

TEST(HttpResources, CredentialsFromTheUrlOrTheEnvironmentAreSentAndNeverShown) {
  Inventory inventory;
  inventory.status = 401;
  HttpServer server(inventory.routes());
  const std::string url =
      "http://inv-user:s3cret-pw@127.0.0.1:" + std::to_string(server.port()) + "/resources.json";
  auto provider = make_url_provider(url, quick());
  EXPECT_EQ(provider->describe().find("s3cret"), std::string::npos) << provider->describe();
  const auto what = error_of([&] { provider->load(); });
  EXPECT_NE(what.find("401"), std::string::npos) << what;
  EXPECT_EQ(what.find("s3cret"), std::string::npos) << what;
  EXPECT_EQ(what.find("inv-user"), std::string::npos) << what;
  EXPECT_EQ(inventory.last_authorization, "Basic aW52LXVzZXI6czNjcmV0LXB3");
  ::setenv("LOCKABLE_RESOURCES_TOKEN", "bear-s3cret", 1);
  const auto bearer =
      error_of([&] { make_url_provider(server.url("/resources.json"), quick())->load(); });
  ::unsetenv("LOCKABLE_RESOURCES_TOKEN");
  EXPECT_EQ(inventory.last_authorization, "Bearer bear-s3cret");
  EXPECT_EQ(bearer.find("bear-s3cret"), std::string::npos) << bearer;
}

TEST(HttpResources, AWaiterSeesADeviceThatComesOnlineAndAFailedRefetchKeepsTheList) {
  Inventory inventory;
  HttpServer server(inventory.routes());
  test::TempDir dir;
  std::mutex mutex;
  std::vector<std::string> lines;
  Options options;
  options.resources = server.url("/resources.json");  // text: a spec, here a URL
  options.lock_backend = (dir.path() / "locks").string();
  options.hostname = "h";
  options.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mutex);
    lines.push_back(line);
  };
  Lockable lockable(options);
  auto first = lockable.lock("id=dut-1", Seconds(10));
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(60)); });
  std::this_thread::sleep_for(300ms);
  const int before = inventory.gets;
  {
    std::lock_guard<std::mutex> lock(inventory.mutex);
    inventory.status = 500;  // the refetch fails: the waiter keeps the list and says so once
  }
  // Two failed refetches (one period apart), then the inventory recovers with a new device.
  for (int i = 0; i < 3000 && inventory.gets < before + 2; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GE(inventory.gets, before + 2);
  {
    std::lock_guard<std::mutex> lock(inventory.mutex);
    inventory.status = 200;
  }
  inventory.set(kTwo, "\"v2\"");
  ASSERT_EQ(waiter.wait_for(30s), std::future_status::ready) << "dut-2 was never seen";
  auto second = waiter.get();
  EXPECT_EQ(second.resource_id(), "dut-2");
  std::lock_guard<std::mutex> lock(mutex);
  int kept = 0;
  for (const auto& line : lines)
    kept += line.find("keeping the previous resources") != std::string::npos;
  EXPECT_EQ(kept, 1);
}

}  // namespace
}  // namespace lockable
