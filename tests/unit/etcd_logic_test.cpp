// The pure part of the etcd backend: base64, key ranges, the gateway's value conventions, spec
// parsing, queue order by create revision, and when a lease must count as lapsed.

#include "etcd/etcd_logic.hpp"
#include "core/json_text.hpp"

#include <lockable/error.hpp>

#include <gtest/gtest.h>

namespace lockable::etcd {
namespace {

using namespace std::chrono_literals;
using Ids = std::vector<std::vector<std::string>>;

TEST(EtcdLogicTest, Base64RoundTripsAndMatchesTheGatewaySamples) {
  // Samples from the gateway fact sheet.
  EXPECT_EQ(base64_encode("/locks/dev/gpu0"), "L2xvY2tzL2Rldi9ncHUw");
  EXPECT_EQ(base64_encode("owner-A"), "b3duZXItQQ==");
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode(std::string("\0", 1)), "AA==");
  for (const std::string text : {"", "a", "ab", "abc", "abcd", "\xff\xfe\x00 x"}) {
    EXPECT_EQ(base64_decode(base64_encode(text)).value(), text);
  }
  EXPECT_FALSE(base64_decode("abc").has_value()) << "not a multiple of 4";
  EXPECT_FALSE(base64_decode("ab=c").has_value()) << "padding inside";
  EXPECT_FALSE(base64_decode("a$bc").has_value());
}

TEST(EtcdLogicTest, PrefixRangeEndIncrementsTheLastByte) {
  EXPECT_EQ(prefix_range_end("/locks/dev/"), "/locks/dev0");
  EXPECT_EQ(prefix_range_end("a\xff"), "b");
  EXPECT_EQ(prefix_range_end("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
}

// "succeeded" is left out when false; a value of another type is an answer no etcd gives, and
// must not escape as a JSON type error (the CLI showed it as an internal error).
TEST(EtcdLogicTest, BoolFieldsMissingMeanFalseOtherTypesAreRefused) {
  EXPECT_EQ(etcd::bool_field(Json::parse(R"({"succeeded": true})"), "succeeded"), true);
  EXPECT_EQ(etcd::bool_field(Json::parse(R"({"header": {}})"), "succeeded"), false);
  EXPECT_EQ(etcd::bool_field(Json::parse(R"({"succeeded": "maybe"})"), "succeeded"), std::nullopt);
  EXPECT_EQ(etcd::bool_field(Json::parse("[true]"), "succeeded"), std::nullopt);
}

TEST(EtcdLogicTest, Int64FieldsAreStringsAndMissingMeansZero) {
  const Json json = Json::parse(R"({"ID":"2324035551016806414","TTL":"10","n":7,"bad":"1x"})");
  EXPECT_EQ(int64_field(json, "ID").value(), 2324035551016806414LL);
  EXPECT_EQ(int64_field(json, "TTL").value(), 10);
  EXPECT_EQ(int64_field(json, "n").value(), 7);
  EXPECT_EQ(int64_field(json, "missing").value(), 0);
  EXPECT_FALSE(int64_field(json, "bad").has_value());
  EXPECT_FALSE(int64_field(Json::array(), "ID").has_value());
}

TEST(EtcdLogicTest, LayoutNormalisesThePrefix) {
  EXPECT_EQ(make_layout("").prefix, "/lockable");
  EXPECT_EQ(make_layout("lab1").prefix, "/lab1");
  EXPECT_EQ(make_layout("//lab1/").prefix, "/lab1");
  const auto layout = make_layout("/site/lab1");
  EXPECT_EQ(layout.lock_key("dut-1"), "/site/lab1/locks/dut-1");
  EXPECT_EQ(layout.queue_dir(), "/site/lab1/queue/");
  EXPECT_EQ(layout.id_of_lock_key("/site/lab1/locks/dut-1").value(), "dut-1");
  EXPECT_FALSE(layout.id_of_lock_key("/site/lab1/queue/x").has_value());
  EXPECT_FALSE(layout.id_of_lock_key("/site/lab1/locks/").has_value());
  EXPECT_THROW(make_layout("/lab/../x"), ConfigError);
  EXPECT_THROW(make_layout(std::string("/la\nb")), ConfigError);
}

TEST(EtcdLogicTest, SpecNamesHostsPrefixAndTtl) {
  auto parts = parse_spec("10.0.0.5:2379,10.0.0.6:2379/lab1?ttl=7", "");
  EXPECT_EQ(parts.endpoints,
            (std::vector<std::string>{"http://10.0.0.5:2379", "http://10.0.0.6:2379"}));
  EXPECT_EQ(parts.prefix, "/lab1");
  EXPECT_EQ(parts.ttl.value(), 7s);
  parts = parse_spec("/lab2", "https://a:2379/, http://b:2379");
  EXPECT_EQ(parts.endpoints, (std::vector<std::string>{"https://a:2379", "http://b:2379"}));
  EXPECT_EQ(parts.prefix, "/lab2");
  EXPECT_FALSE(parts.ttl.has_value());
  parts = parse_spec("127.0.0.1:2379", "http://ignored:1");
  EXPECT_EQ(parts.endpoints, std::vector<std::string>{"http://127.0.0.1:2379"});
  EXPECT_EQ(parts.prefix, "");
}

TEST(EtcdLogicTest, BadSpecsSayWhatToWrite) {
  const auto message = [](const std::string& rest, const std::string& env) {
    try {
      parse_spec(rest, env);
    } catch (const ConfigError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("host/lab", "").find("is not HOST:PORT"), std::string::npos);
  EXPECT_NE(message("u:pw@host:1/lab", "").find("LOCKABLE_ETCD_PASSWORD"), std::string::npos);
  EXPECT_NE(message("/lab", "").find("LOCKABLE_ETCD_ENDPOINTS"), std::string::npos);
  EXPECT_NE(message("/lab", "ftp://x").find("not an http:// or https:// URL"), std::string::npos);
  EXPECT_NE(message("/lab", "http://u:pw@x:1").find("credentials"), std::string::npos);
  EXPECT_NE(message("h:1/lab?ttl=0", "").find("ttl=0"), std::string::npos);
  EXPECT_NE(message("h:1/lab?ttl=abc", "").find("whole number"), std::string::npos);
  EXPECT_NE(message("h:1/lab?lease=3", "").find("unknown option \"lease\""), std::string::npos);
}

Json kv(const std::string& key, std::int64_t create_revision, const std::string& value) {
  return Json{{"key", base64_encode(key)},
              {"create_revision", std::to_string(create_revision)},
              {"value", base64_encode(value)}};
}

TEST(EtcdLogicTest, QueueIsOrderedByCreateRevisionAndForeignEntriesWantNothing) {
  const Json kvs = Json::array({kv("/q/c", 30, R"({"wanted":["c"],"pid":3})"),
                                kv("/q/a", 10, R"({"wanted":["a","b"],"pid":1})"),
                                kv("/q/x", 20, "not json"), kv("/q/d", 40, R"({"wanted":["d"]})")});
  const auto queue = parse_queue(kvs);
  ASSERT_EQ(queue.size(), 4u);
  EXPECT_EQ(queue[0].key, "/q/a");
  EXPECT_EQ(queue[0].holder.value("pid", 0), 1);
  EXPECT_FALSE(queue[0].holder.contains("wanted"));
  EXPECT_TRUE(queue[1].wanted.empty()) << "foreign data never stalls the queue";
  EXPECT_EQ(wanted_before(queue, 30, "/q/c"), (Ids{{"a", "b"}, {}}));
  EXPECT_EQ(wanted_before(queue, 10, "/q/a"), Ids{});
  EXPECT_EQ(wanted_before(queue, 0, "/q/new"), (Ids{{"a", "b"}, {}, {"c"}, {"d"}}))
      << "not queued yet: everyone is earlier";
}

TEST(EtcdLogicTest, QueueOrderFollowsPriorityThenCreateRevision) {
  // An older version's entry (no priority) counts as 0; the since of each entry ages it.
  const Json kvs = Json::array(
      {kv("/q/old", 10, R"({"wanted":["old"],"pid":1,"since":"2026-12-01T10:00:00Z"})"),
       kv("/q/urgent", 20,
          R"({"wanted":["urgent"],"pid":2,"priority":5,"since":"2026-12-01T10:00:01Z"})"),
       kv("/q/plain", 30,
          R"({"wanted":["plain"],"pid":3,"priority":0,"since":"2026-12-01T10:00:02Z"})")});
  const auto queue = parse_queue(kvs);
  ASSERT_EQ(queue.size(), 3u);
  EXPECT_EQ(queue[0].place.priority, 0);
  EXPECT_EQ(queue[1].place.priority, 5);
  const auto now = queue[2].place.since + std::chrono::seconds(1);
  const auto aging = std::chrono::seconds(60);
  EXPECT_EQ(wanted_before(queue, 30, "/q/plain", queue[2].place, now, aging),
            (Ids{{"urgent"}, {"old"}}));
  EXPECT_EQ(wanted_before(queue, 10, "/q/old", queue[0].place, now, aging), (Ids{{"urgent"}}));
  EXPECT_EQ(wanted_before(queue, 20, "/q/urgent", queue[1].place, now, aging), Ids{});
  // A newcomer not queued yet, of priority 9, goes before all of them.
  EXPECT_EQ(wanted_before(queue, 0, "/q/new", QueuePlace{9, now}, now, aging), Ids{});
  // Ten minutes later every entry has aged by 10: a priority-9 newcomer then queues behind all.
  const auto later = now + std::chrono::minutes(10);
  EXPECT_EQ(wanted_before(queue, 0, "/q/new", QueuePlace{9, later}, later, aging),
            (Ids{{"urgent"}, {"old"}, {"plain"}}));
}

TEST(EtcdLogicTest, HolderValuesAreOursOnlyWithAllocIdAndPid) {
  EXPECT_TRUE(parse_holder_value(R"({"pid":1,"alloc_id":"x","hostname":"h"})").has_value());
  EXPECT_FALSE(parse_holder_value(R"({"pid":1})").has_value());
  EXPECT_FALSE(parse_holder_value("owned by a shell script").has_value());
  EXPECT_FALSE(parse_holder_value("").has_value());
}

TEST(EtcdLogicTest, ARevocationRecordGivesTheOperatorsReasonOnOneLine) {
  const auto layout = make_layout("/lab1");
  EXPECT_EQ(layout.revocation_key(0x694d7a1b2c3d4e5f), "/lab1/revoked/694d7a1b2c3d4e5f");
  EXPECT_EQ(revocation_text(revocation_value("dut-1", "stuck since yesterday")),
            "an operator took dut-1 (lockable release --force): stuck since yesterday");
  EXPECT_EQ(revocation_text(revocation_value("dut-1", "")),
            "an operator took dut-1 (lockable release --force)");
  EXPECT_EQ(revocation_text(revocation_value("dut-1", "line one\nline two")),
            "an operator took dut-1 (lockable release --force): line one line two");
  const auto long_reason = revocation_text(
      revocation_value("d", std::string(499, 'x') + "\u00e9" + std::string(300, 'y')));
  ASSERT_TRUE(long_reason.has_value());
  EXPECT_LE(long_reason->size(),
            std::string("an operator took d (lockable release --force): ").size() + 500);
  EXPECT_FALSE(lockable::detail::invalid_utf8_offset(*long_reason).has_value());
  EXPECT_FALSE(revocation_text("not json").has_value());
  EXPECT_FALSE(revocation_text(R"({"id": 7, "reason": "x"})").has_value());
  EXPECT_FALSE(revocation_text(R"({"id": "dut-1"})").has_value());
}

TEST(EtcdLogicTest, ALeaseCountsAsLapsedBeforeTheServerCanExpireIt) {
  const auto sent = std::chrono::steady_clock::time_point(100s);
  const auto ttl = std::chrono::steady_clock::duration(2s);
  const auto margin = loss_margin(ttl);
  EXPECT_EQ(margin, std::chrono::steady_clock::duration(500ms));
  EXPECT_EQ(loss_margin(60s), std::chrono::steady_clock::duration(1s));
  EXPECT_FALSE(lease_maybe_lapsed(sent, ttl, margin, sent + 1s));
  EXPECT_TRUE(lease_maybe_lapsed(sent, ttl, margin, sent + 1500ms));
  EXPECT_TRUE(lease_maybe_lapsed(sent, ttl, margin, sent + 2s)) << "the server may expire it now";
  EXPECT_LT(refresh_interval(ttl) * 2, ttl - margin) << "two renewals fit before a loss";
}

TEST(EtcdLogicTest, GatewayErrorsAreRead) {
  const auto error = parse_gateway_error(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, 5);
  EXPECT_EQ(error->message, "etcdserver: requested lease not found");
  EXPECT_FALSE(parse_gateway_error("404 page not found").has_value());
  EXPECT_EQ(lease_hex(2324035551016806414LL), "2040a20537bc680e");
}

}  // namespace
}  // namespace lockable::etcd
