// The allocation log (Options::metrics_file): one JSON line per finished allocation or request
// that ended without a device, written through a real file, read back with the report's reader.

#include <lockable/lockable.hpp>
#include <lockable/metrics.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <sstream>

#include "core/allocation_record.hpp"
#include "lockable/test/files.hpp"
#include "lockable/test/held_elsewhere.hpp"
#include "lockable/test/memory_backend.hpp"

namespace lockable {
namespace {

using metrics::AllocationRecord;
using metrics::Outcome;

Json device(const std::string& id) {
  return Json{{"id", id}, {"online", true}, {"hostname", "test-host"}, {"os", "android"}};
}

std::vector<Json> lines_of(const std::filesystem::path& file) {
  std::istringstream text(test::read_text(file));
  std::vector<Json> lines;
  for (std::string line; std::getline(text, line);) lines.push_back(Json::parse(line));
  return lines;
}

class AllocationLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto backend = std::make_unique<test::MemoryBackend>();
    backend_ = backend.get();
    Options options;
    options.hostname = "test-host";
    options.log = [this](const std::string& line) { warnings_.push_back(line); };
    options.metrics_file = file_;
    options.metrics_label = "make check";
    lockable_ = std::make_unique<Lockable>(
        std::move(options), make_list_provider(Json::array({device("dut-1")})), std::move(backend));
  }

  test::TempDir dir_;
  std::filesystem::path file_ = dir_.path() / "allocations.jsonl";
  test::MemoryBackend* backend_ = nullptr;
  std::vector<std::string> warnings_;
  std::unique_ptr<Lockable> lockable_;
};

TEST_F(AllocationLogTest, ReleasedAllocationIsOneLineWithEveryField) {
  const double before =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto allocation = lockable_->lock("os=android");
  EXPECT_TRUE(lines_of(file_).empty()) << "nothing is written before the allocation ends";
  allocation.unlock();
  const auto lines = lines_of(file_);
  ASSERT_EQ(lines.size(), 1u);
  const Json& line = lines[0];
  EXPECT_EQ(line["outcome"], "released");
  EXPECT_EQ(line["resource_id"], "dut-1");
  EXPECT_EQ(line["alloc_id"], allocation.alloc_id());
  EXPECT_FALSE(line["request_id"].get<std::string>().empty());
  EXPECT_EQ(line["requirements"], Json::parse(R"({"os":"android"})"));
  EXPECT_EQ(line["host"], "test-host");
  EXPECT_EQ(line["pid"], static_cast<long>(::getpid()));
  EXPECT_EQ(line["backend"], "memory backend");
  EXPECT_EQ(line["label"], "make check");
  EXPECT_EQ(line["queued"], false);
  EXPECT_FALSE(line.contains("fencing_token")) << "the memory backend issues none";
  const AllocationRecord record = metrics::record_from_json(line);
  EXPECT_GE(*record.start, before - 0.001);
  EXPECT_GE(*record.end, *record.start);
  EXPECT_NEAR(*record.duration, std::chrono::duration<double>(allocation.duration()).count(), 0.01);
  EXPECT_NEAR(record.queue_time, std::chrono::duration<double>(allocation.queue_time()).count(),
              0.01);
  EXPECT_TRUE(warnings_.empty());
}

TEST_F(AllocationLogTest, LostAllocationIsLoggedAtItsReleaseWithTheReason) {
  auto allocation = lockable_->lock("");
  ASSERT_TRUE(backend_->revoke("dut-1", "dut-1: lease expired"));
  allocation.unlock();
  const auto lines = lines_of(file_);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["outcome"], "lost");
  EXPECT_EQ(lines[0]["reason"], "dut-1: lease expired");
  EXPECT_EQ(lines[0]["alloc_id"], allocation.alloc_id());
}

TEST_F(AllocationLogTest, RequestsThatGetNothingAreLoggedWithTheirCandidatesAndWait) {
  test::HeldElsewhere holder(*lockable_, "");
  EXPECT_THROW(lockable_->lock("", Seconds(0.2)), TimeoutError);
  EXPECT_THROW(lockable_->lock("os=ios"), NoMatchError);
  holder.unlock();
  lockable_->cancel();
  EXPECT_THROW(lockable_->lock(""), CancelledError);
  std::vector<std::string> outcomes;
  for (const auto& line : lines_of(file_)) {
    const auto record = metrics::record_from_json(line);
    if (record.outcome == Outcome::kReleased) continue;  // the holder's own allocation
    outcomes.push_back(metrics::to_string(record.outcome));
    EXPECT_TRUE(record.resource_id.empty());
    EXPECT_FALSE(record.reason.empty());
    if (record.outcome == Outcome::kTimedOut) {
      EXPECT_EQ(record.candidates, std::vector<std::string>{"dut-1"});
      EXPECT_TRUE(record.queued);
      EXPECT_GE(record.queue_time, 0.2);
    }
  }
  EXPECT_EQ(outcomes, (std::vector<std::string>{"timed_out", "no_match", "cancelled"}));
}

TEST(AllocationLogAdminTest, OperatorsActionsAreOneLineEachWithWhoAndWhy) {
  test::TempDir dir;
  const auto file = dir.path() / "allocations.jsonl";
  auto log = make_allocation_log(file, "lock folder /locks", "", nullptr);
  for (const auto kind : {AllocationEvent::Kind::kReserved, AllocationEvent::Kind::kForced,
                          AllocationEvent::Kind::kUnreserved}) {
    AllocationEvent event;
    event.kind = kind;
    event.resource_ids = {"dut-1"};
    event.by = "ann@rig-01";
    event.reason = "bench rework";
    if (kind == AllocationEvent::Kind::kForced) event.holder = "pid 42 on rig-01";
    event.hostname = "rig-01";
    event.pid = 7;
    event.wall_time = std::chrono::system_clock::now();
    log(event);
  }
  const auto lines = lines_of(file);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["event"], "reserved");
  EXPECT_EQ(lines[1]["event"], "forced");
  EXPECT_EQ(lines[1]["holder"], "pid 42 on rig-01");
  EXPECT_EQ(lines[2]["event"], "unreserved");
  for (const auto& line : lines) {
    EXPECT_EQ(line["resource_id"], "dut-1");
    EXPECT_EQ(line["by"], "ann@rig-01");
    EXPECT_EQ(line["reason"], "bench rework");
    EXPECT_EQ(line["backend"], "lock folder /locks");
    EXPECT_TRUE(metrics::parse_timestamp(line["time"].get<std::string>()).has_value());
    EXPECT_TRUE(metrics::is_admin_line(line));
    EXPECT_FALSE(line.contains("outcome")) << "no allocation: older readers skip or name it";
  }
}

TEST(AllocationLogWarningTest, UnwritableFileIsOneWarningAndNeverAFailedAllocation) {
  test::TempDir dir;
  std::vector<std::string> warnings;
  Options options;
  options.hostname = "test-host";
  options.log = [&](const std::string& line) { warnings.push_back(line); };
  options.metrics_file = dir.path();  // a directory: open() fails
  Lockable lockable(std::move(options), make_list_provider(Json::array({device("dut-1")})),
                    std::make_unique<test::MemoryBackend>());
  for (int i = 0; i < 3; ++i) lockable.lock("").unlock();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(dir.path().string()), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("LOCKABLE_METRICS_FILE"), std::string::npos) << warnings[0];
}

TEST(AllocationRecordTest, LogLineRoundTripsWithFencingTokenAndLongText) {
  AllocationRecord record;
  record.outcome = Outcome::kLost;
  record.resource_id = "etcd-dut";
  record.alloc_id = "a1";
  record.request_id = "r1";
  record.requirements = R"({"note":")" + std::string(10000, 'x') + R"("})";
  record.host = "h";
  record.pid = 42;
  record.backend = "etcd http://127.0.0.1:2379";
  record.label = "suite";
  record.queued = true;
  record.queue_time = 1.25;
  record.requested = 1796138444.5;
  record.start = 1764602445.75;
  record.end = 1764602447.000125;
  record.duration = 1.250125;
  record.fencing_token = 18446744073709551615ull;
  record.reason = "lease expired";
  const std::string line = metrics::to_log_line(record);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line, whatever the text holds";
  const auto back = metrics::record_from_json(Json::parse(line));
  EXPECT_EQ(back.outcome, Outcome::kLost);
  EXPECT_EQ(back.requirements, record.requirements);
  EXPECT_EQ(back.fencing_token, record.fencing_token);
  EXPECT_DOUBLE_EQ(*back.start, *record.start);
  EXPECT_DOUBLE_EQ(*back.end, *record.end);
  EXPECT_DOUBLE_EQ(*back.duration, *record.duration);
  EXPECT_DOUBLE_EQ(back.queue_time, 1.25);
}

TEST(AllocationRecordTest, TimestampsParseInEveryZoneAndFormatAsUtc) {
  EXPECT_EQ(metrics::format_timestamp(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_DOUBLE_EQ(*metrics::parse_timestamp("2026-12-01T15:20:44.587Z"), 1796138444.587);
  EXPECT_DOUBLE_EQ(*metrics::parse_timestamp("2026-12-01T16:20:44.587+01:00"), 1796138444.587);
  EXPECT_DOUBLE_EQ(*metrics::parse_timestamp("2026-12-01T15:20:44"), 1796138444.0);
  EXPECT_EQ(metrics::format_timestamp(1796138444.587), "2026-12-01T15:20:44.587000Z");
  for (const char* bad : {"", "2026-12-01", "2026-13-01T00:00:00Z", "2026-12-01T15:20:44.Z",
                          "2026-12-01T15:20:44Zjunk", "yesterday"}) {
    EXPECT_FALSE(metrics::parse_timestamp(bad)) << bad;
  }
}

TEST(AllocationRecordTest, BadLinesNameTheField) {
  const auto error_of = [](const char* text) -> std::string {
    try {
      metrics::record_from_json(Json::parse(text));
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "no error";
  };
  EXPECT_NE(error_of(R"({"resource_id":"a"})").find("\"outcome\""), std::string::npos);
  EXPECT_NE(error_of(R"({"outcome":"eaten"})").find("eaten"), std::string::npos);
  EXPECT_NE(
      error_of(R"({"outcome":"released","resource_id":"a","alloc_id":"b"})").find("\"start\""),
      std::string::npos);
  EXPECT_NE(error_of(R"({"outcome":"timed_out","end":"soon"})").find("\"end\""), std::string::npos);
}

}  // namespace
}  // namespace lockable
