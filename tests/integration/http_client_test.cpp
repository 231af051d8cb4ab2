// The one HTTP client against a real server on 127.0.0.1: retries, timeouts, redirects,
// connection reuse, cancellation and what its errors show (never credentials).
#include "http/client.hpp"

#include <lockable/error.hpp>
#include <lockable/version.hpp>

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/http_server.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace {

using lockable::http::Client;
using lockable::http::ClientOptions;
using lockable::http::Request;
using lockable::test::HttpServer;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

ClientOptions fast_retries() {
  ClientOptions options;
  options.retry_initial = 5ms;
  options.retry_cap = 20ms;
  options.connect_timeout = 2000ms;
  return options;
}

Request get(const std::string& url) {
  Request request;
  request.url = url;
  return request;
}

TEST(HttpClient, ReturnsStatusBodyAndHeadersAndSendsItsUserAgent) {
  std::string agent;
  HttpServer server([&](httplib::Server& s) {
    s.Get("/r", [&](const httplib::Request& request, httplib::Response& response) {
      agent = request.get_header_value("User-Agent");
      response.set_header("ETag", "\"v1\"");
      response.set_content("[1,2]", "application/json");
    });
  });
  Client client(fast_retries());
  const auto response = client.send(get(server.url("/r")), Clock::now() + 10s);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "[1,2]");
  EXPECT_EQ(response.header("etag").value_or(""), "\"v1\"");
  EXPECT_EQ(response.header("ETag").value_or(""), "\"v1\"");
  EXPECT_EQ(agent, std::string("lockable-cpp/") + lockable::kVersion);
}

TEST(HttpClient, ReusesOneConnectionForASeriesOfCalls) {
  HttpServer server([](httplib::Server& s) {
    s.Get("/r", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok", "text/plain");
    });
  });
  Client client(fast_retries());
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(client.send(get(server.url("/r")), Clock::now() + 10s).status, 200);
  }
  // The server counts a request after its answer is written, so the last count may lag a moment.
  for (int i = 0; i < 500 && server.requests() < 10; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server.requests(), 10);
  // One connection; a second when a loaded machine makes the server drop an idle one.
  EXPECT_LE(server.connections(), 2);
}

TEST(HttpClient, RetriesEachRetriedStatusUntilItSucceeds) {
  for (const int status : {500, 502, 503, 504, 429}) {
    std::atomic<int> calls{0};
    HttpServer server([&](httplib::Server& s) {
      s.Get("/r", [&](const httplib::Request&, httplib::Response& response) {
        if (++calls < 3) {
          response.status = status;
          response.set_content("busy", "text/plain");
          return;
        }
        response.set_content("fine", "text/plain");
      });
    });
    Client client(fast_retries());
    const auto response = client.send(get(server.url("/r")), Clock::now() + 10s);
    EXPECT_EQ(response.status, 200) << status;
    EXPECT_EQ(response.body, "fine") << status;
    EXPECT_EQ(calls.load(), 3) << status;
  }
}

TEST(HttpClient, AClientErrorIsReturnedAtOnceNotRetried) {
  std::atomic<int> calls{0};
  HttpServer server([&](httplib::Server& s) {
    s.Get("/r", [&](const httplib::Request&, httplib::Response& response) {
      ++calls;
      response.status = 404;
    });
  });
  Client client(fast_retries());
  EXPECT_EQ(client.send(get(server.url("/r")), Clock::now() + 10s).status, 404);
  EXPECT_EQ(calls.load(), 1);
}

TEST(HttpClient, HonoursRetryAfter) {
  std::atomic<int> calls{0};
  HttpServer server([&](httplib::Server& s) {
    s.Get("/r", [&](const httplib::Request&, httplib::Response& response) {
      if (++calls == 1) {
        response.status = 429;
        response.set_header("Retry-After", "1");
        return;
      }
      response.set_content("ok", "text/plain");
    });
  });
  Client client(fast_retries());
  const auto started = Clock::now();
  EXPECT_EQ(client.send(get(server.url("/r")), Clock::now() + 10s).status, 200);
  // The backoff alone would retry after at most 20 ms.
  EXPECT_GE(Clock::now() - started, 900ms);
}

// The header's forms, including dates the clock's nanoseconds cannot hold (year 7028 overflowed,
// found by fuzz_http_answers).
TEST(HttpClient, RetryAfterValuesParseWithoutOverflow) {
  using lockable::http::parse_retry_after;
  const auto now = std::chrono::system_clock::from_time_t(1764590400);  // 2025-12-01T12:00:00Z
  EXPECT_EQ(parse_retry_after(" 120 ", now), std::chrono::seconds(120));
  EXPECT_EQ(parse_retry_after("Mon, 01 Dec 2025 12:00:30 GMT", now), std::chrono::seconds(30));
  EXPECT_EQ(parse_retry_after("Mon, 01 Dec 2025 11:00:00 GMT", now), Clock::duration{0});
  EXPECT_EQ(parse_retry_after("Oct 01 7028 00:00:00 GMT", now), std::chrono::hours(24 * 365));
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
}

TEST(HttpClient, ARetryAfterBeyondTheDeadlineFailsAtOnceAsTemporary) {
  HttpServer server([&](httplib::Server& s) {
    s.Get("/r", [&](const httplib::Request&, httplib::Response& response) {
      response.status = 503;
      response.set_header("Retry-After", "3600");
      response.set_content("maintenance", "text/plain");
    });
  });
  Client client(fast_retries());
  const auto started = Clock::now();
  try {
    client.send(get(server.url("/r")), Clock::now() + 30s);
    FAIL() << "no error";
  } catch (const lockable::TemporarilyUnavailableError& error) {
    EXPECT_NE(std::string(error.what()).find("503"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("maintenance"), std::string::npos) << error.what();
  }
  EXPECT_LT(Clock::now() - started, 10s);
}

TEST(HttpClient, PersistentServerErrorsEndAtTheDeadlineNamingUrlStatusAndBody) {
  HttpServer server([&](httplib::Server& s) {
    s.Get("/inventory", [&](const httplib::Request&, httplib::Response& response) {
      response.status = 500;
      response.set_content("database is down\nsecond line", "text/plain");
    });
  });
  Client client(fast_retries());
  const auto url = "http://lab:s3cret@127.0.0.1:" + std::to_string(server.port()) +
                   "/inventory?token=abc123&site=a";
  try {
    client.send(get(url), Clock::now() + 300ms);
    FAIL() << "no error";
  } catch (const lockable::TemporarilyUnavailableError& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("GET http://127.0.0.1:" + std::to_string(server.port()) +
                        "/inventory?token=REDACTED&site=a answered 500: database is down second "
                        "line"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("attempts"), std::string::npos) << text;
    EXPECT_EQ(text.find("s3cret"), std::string::npos) << text;
    EXPECT_EQ(text.find("abc123"), std::string::npos) << text;
    EXPECT_EQ(text.find("lab:"), std::string::npos) << text;
  }
  EXPECT_GT(server.requests(), 1);
}

TEST(HttpClient, SecretsTheServerEchoesInAnErrorBodyAreNeverShown) {
  // A server that tells what it got wrong, quoting the credentials and the URL it was sent.
  HttpServer server([&](httplib::Server& s) {
    s.Get("/inventory", [&](const httplib::Request& request, httplib::Response& response) {
      response.status = 401;
      response.set_content(
          "bad credentials " + request.get_header_value("Authorization") + " for " + request.target,
          "text/plain");
    });
  });
  const std::string base = "127.0.0.1:" + std::to_string(server.port()) + "/inventory";
  std::vector<Request> requests(4, get("http://" + base));
  requests[0].basic_auth = std::make_pair(std::string("lab"), std::string("basic-s3cret"));
  requests[1].headers.push_back("Authorization: Bearer bearer-s3cret");
  requests[2].url = "http://" + base + "?token=query-s3cret&site=a";
  requests[3].url = "http://lab:url-s3cret@" + base;
  Client client(fast_retries());
  for (const auto& request : requests) {
    const auto response = client.send(request, Clock::now() + 10s);
    ASSERT_EQ(response.status, 401);
    const std::string text = lockable::http::describe_answer(request, response);
    EXPECT_NE(text.find("bad credentials"), std::string::npos) << text;
    EXPECT_EQ(text.find("s3cret"), std::string::npos) << text;
    EXPECT_EQ(text.find("bGFiOmJhc2ljLXMzY3JldA"), std::string::npos) << text;  // base64
    EXPECT_NE(text.find("REDACTED"), std::string::npos) << text;
  }
}

// A port free on 127.0.0.1 now (for a server that cannot be told to pick one itself).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), size);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

TEST(HttpClient, ASelfSignedServerIsRefusedAtOnceAndTurningVerificationOffWarnsEachTime) {
  lockable::test::TempDir dir;
  const auto cert = dir.path() / "cert.pem";
  const auto key = dir.path() / "key.pem";
  const auto made =
      lockable::test::run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                           "-keyout", key.string(), "-out", cert.string(), "-days", "1", "-subj",
                           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(made.exit_code, 0) << made.out;
  const int port = free_port();
  lockable::test::Child server({"/usr/bin/openssl", "s_server", "-accept",
                                "127.0.0.1:" + std::to_string(port), "-cert", cert.string(), "-key",
                                key.string(), "-www", "-quiet"});
  const auto end = Clock::now() + 60s;
  while (!accepts(port) && Clock::now() < end) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(accepts(port));
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/";

  // Verification on (the default): refused as untrusted, not retried until the deadline.
  try {
    Client(fast_retries()).send(get(url), Clock::now() + 60s);
    FAIL() << "a self-signed server was trusted";
  } catch (const lockable::TemporarilyUnavailableError& error) {
    FAIL() << "retried as if temporary: " << error.what();
  } catch (const lockable::BackendError& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("GET " + url + ": the server's TLS certificate is not trusted"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("give the lab's CA bundle"), std::string::npos) << text;
  }
  // The same server with its certificate as the CA bundle: the refusal was about trust.
  auto with_ca = fast_retries();
  with_ca.ca_file = cert.string();
  EXPECT_EQ(Client(with_ca).send(get(url), Clock::now() + 60s).status, 200);
  // The only way to turn verification off is in code, and each client says so.
  std::vector<std::string> warnings;
  auto insecure = fast_retries();
  insecure.verify_tls = false;
  insecure.log = [&](const std::string& line) { warnings.push_back(line); };
  EXPECT_EQ(Client(insecure).send(get(url), Clock::now() + 60s).status, 200);
  EXPECT_EQ(Client(insecure).send(get(url), Clock::now() + 60s).status, 200);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("lockable: warning: TLS certificate verification is off"),
            std::string::npos)
      << warnings[0];
}

TEST(HttpClient, ARefusedConnectionIsTemporaryAndRetriedUntilTheServerIsBack) {
  HttpServer server([](httplib::Server& s) {
    s.Get("/r", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("back", "text/plain");
    });
  });
  server.stop();
  Client client(fast_retries());
  EXPECT_THROW(client.send(get(server.url("/r")), Clock::now() + 200ms),
               lockable::TemporarilyUnavailableError);
  std::thread restart([&] {
    std::this_thread::sleep_for(200ms);
    server.restart();
  });
  const auto response = client.send(get(server.url("/r")), Clock::now() + 20s);
  restart.join();
  EXPECT_EQ(response.body, "back");
}

TEST(HttpClient, AServerThatStallsPastTheDeadlineIsATemporaryFailure) {
  std::atomic<bool> release{false};
  HttpServer server([&](httplib::Server& s) {
    s.Get("/slow", [&](const httplib::Request&, httplib::Response& response) {
      while (!release) std::this_thread::sleep_for(5ms);
      response.set_content("late", "text/plain");
    });
  });
  Client client(fast_retries());
  const auto started = Clock::now();
  EXPECT_THROW(client.send(get(server.url("/slow")), Clock::now() + 300ms),
               lockable::TemporarilyUnavailableError);
  EXPECT_LT(Clock::now() - started, 5s);
  release = true;
}

TEST(HttpClient, FollowsRedirectsAndSaysWhereTheBodyCameFrom) {
  HttpServer server([](httplib::Server& s) {
    s.Get("/old", [](const httplib::Request&, httplib::Response& response) {
      response.set_redirect("/new");
    });
    s.Get("/new", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("moved", "text/plain");
    });
    s.Get("/loop", [](const httplib::Request&, httplib::Response& response) {
      response.set_redirect("/loop");
    });
  });
  Client client(fast_retries());
  const auto response = client.send(get(server.url("/old")), Clock::now() + 10s);
  EXPECT_EQ(response.body, "moved");
  EXPECT_EQ(response.url, server.url("/new"));
  try {
    client.send(get(server.url("/loop")), Clock::now() + 10s);
    FAIL() << "no error";
  } catch (const lockable::BackendError& error) {
    EXPECT_NE(std::string(error.what()).find("redirects"), std::string::npos) << error.what();
  }
}

TEST(HttpClient, SendsBasicCredentialsAndABody) {
  std::string authorization;
  std::string body;
  HttpServer server([&](httplib::Server& s) {
    s.Post("/p", [&](const httplib::Request& request, httplib::Response& response) {
      authorization = request.get_header_value("Authorization");
      body = request.body;
      response.set_content("{}", "application/json");
    });
  });
  Client client(fast_retries());
  Request request = get(server.url("/p"));
  request.method = "POST";
  request.body = "{\"key\":\"a\"}";
  request.headers = {"Content-Type: application/json"};
  request.basic_auth = std::make_pair(std::string("token123"), std::string());
  EXPECT_EQ(client.send(request, Clock::now() + 10s).status, 200);
  EXPECT_EQ(body, "{\"key\":\"a\"}");
  EXPECT_EQ(authorization, "Basic dG9rZW4xMjM6");  // base64("token123:")
}

TEST(HttpClient, CancelEndsAWaitingCallAtOnce) {
  std::atomic<bool> release{false};
  HttpServer server([&](httplib::Server& s) {
    s.Get("/slow", [&](const httplib::Request&, httplib::Response& response) {
      while (!release) std::this_thread::sleep_for(5ms);
      response.set_content("late", "text/plain");
    });
  });
  Client client(fast_retries());
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    cancel = true;
    client.interrupt();
  });
  const auto started = Clock::now();
  EXPECT_THROW(client.send(get(server.url("/slow")), Clock::now() + 60s, &cancel),
               lockable::CancelledError);
  EXPECT_LT(Clock::now() - started, 10s);
  canceller.join();
  release = true;
}

TEST(HttpClient, StreamsTheBodyAndStopsWhenTheConsumerHasEnough) {
  HttpServer server([](httplib::Server& s) {
    s.Get("/stream", [](const httplib::Request&, httplib::Response& response) {
      response.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
        // Endless: only the consumer ends this transfer.
        const std::string line = "{\"result\":{}}\n";
        sink.write(line.data(), line.size());
        std::this_thread::sleep_for(5ms);
        return true;
      });
    });
  });
  Client client(fast_retries());
  Request request = get(server.url("/stream"));
  int lines = 0;
  request.on_data = [&](std::string_view piece) {
    for (const char c : piece) lines += c == '\n' ? 1 : 0;
    return lines < 3;
  };
  const auto response = client.send(request, Clock::now() + 20s);
  EXPECT_EQ(response.status, 200);
  EXPECT_GE(lines, 3);
  EXPECT_TRUE(response.body.empty());
}

TEST(HttpUrl, RedactionDropsCredentialsAndSecretQueryValues) {
  using lockable::http::redact_url;
  EXPECT_EQ(redact_url("https://user:pw@host:8080/a?b=1"), "https://host:8080/a?b=1");
  EXPECT_EQ(redact_url("https://token@host/a"), "https://host/a");
  EXPECT_EQ(redact_url("http://host/a?access_token=x&n=2&API_KEY=y#frag"),
            "http://host/a?access_token=REDACTED&n=2&API_KEY=REDACTED#frag");
  EXPECT_EQ(redact_url("http://host/a@b"), "http://host/a@b");
  EXPECT_EQ(redact_url("/plain/path"), "/plain/path");
}

TEST(HttpUrl, CredentialsAreSplitFromTheUrlAndDecoded) {
  using lockable::http::split_credentials;
  const auto both = split_credentials("https://us%40er:p%3Aw@host:8080/a?b=1");
  EXPECT_EQ(both.url, "https://host:8080/a?b=1");
  EXPECT_EQ(both.user.value_or("?"), "us@er");
  EXPECT_EQ(both.password.value_or("?"), "p:w");
  const auto token = split_credentials("http://tok@host/v1");
  EXPECT_EQ(token.url, "http://host/v1");
  EXPECT_EQ(token.user.value_or("?"), "tok");
  EXPECT_FALSE(token.password.has_value());
  const auto none = split_credentials("http://host/a@b");
  EXPECT_EQ(none.url, "http://host/a@b");
  EXPECT_FALSE(none.user.has_value());
}

TEST(HttpUrl, PathSegmentsAreEncoded) {
  using lockable::http::encode_path_segment;
  EXPECT_EQ(encode_path_segment("rig-01_a.b~"), "rig-01_a.b~");
  EXPECT_EQ(encode_path_segment("a b/c?d#e%"), "a%20b%2Fc%3Fd%23e%25");
  EXPECT_EQ(encode_path_segment("\xc3\xa9"), "%C3%A9");
}

}  // namespace
