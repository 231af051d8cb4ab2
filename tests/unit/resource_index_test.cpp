// The column index must give exactly the tree matcher's answer: hand-picked shapes where the two
// could part (arrays on a path, numeric steps, 2 vs 2.0 vs "2", missing fields, non-object
// attributes), a seeded random comparison, and the list sizes where the index changes mode.
#include <lockable/error.hpp>
#include <lockable/requirements.hpp>

#include "core/matching.hpp"
#include "core/resource_index.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace lockable {
namespace {

Resources from_json_list(const Json& list) {
  std::vector<Resource> resources;
  for (std::size_t i = 0; i < list.size(); ++i) {
    resources.push_back(Resource{"r" + std::to_string(i), list[i]});
  }
  return Resources(std::move(resources));
}

// Shapes chosen so that every path rule of the tree matcher is exercised.
const Resources& shapes() {
  static const Resources resources = from_json_list(Json::parse(R"([
    {"id": "r0", "online": true, "hostname": "rig-01", "os": "Android", "rev": 2,
     "board": {"rev": 2, "name": "nRF", "chip": {"flash": 1024}}, "tags": ["ble", "thread"]},
    {"id": "r1", "online": false, "hostname": "rig-01", "os": "iOS", "rev": 2.0,
     "board": {"rev": "2"}, "tags": "ble"},
    {"id": "r2", "online": true, "hostname": "rig-02", "rev": "2", "board": [{"rev": 2}, {"rev": 3}],
     "tags": []},
    {"id": "r3", "online": true, "os": null, "board": 7, "usb": [{"port": 1}, {"port": 2}]},
    {"id": "r4", "online": true, "hostname": "rig-01", "os": "Android", "board": {"rev": [1, 2]},
     "matrix": [[1, 2], [3]], "a.b": 1, "a": {"b": 2}},
    {"id": "r5", "board": {}, "usb": {"port": 2}, "list": [{"0": "zero"}, "x"], "n": 0},
    {"id": "r6", "rev": -1, "os": "android", "board": {"chip": [{"flash": 512}]}, "big": 1e300}
  ])"));
  return resources;
}

const char* const kQueries[] = {
    "{}",
    R"({"os": "Android"})",
    R"({"os": null})",
    R"({"os": {"$exists": false}})",
    R"({"os": {"$exists": true}})",
    R"({"rev": 2})",
    R"({"rev": 2.0})",
    R"({"rev": "2"})",
    R"({"rev": {"$gte": 2}})",
    R"({"rev": {"$lt": 2}})",
    R"({"rev": {"$in": [2, "2"]}})",
    R"({"rev": {"$nin": [2]}})",
    R"({"rev": {"$ne": 2}})",
    R"({"board.rev": 2})",
    R"({"board.rev": {"$gt": 2}})",
    R"({"board.rev": null})",
    R"({"board.rev": {"$exists": true}})",
    R"({"board.0.rev": 2})",
    R"({"board.1.rev": 3})",
    R"({"board": {}})",
    R"({"board": {"rev": 2}})",
    R"({"board": {"$exists": true}})",
    R"({"board": 7})",
    R"({"board.chip.flash": {"$gte": 1000}})",
    R"({"board.chip.flash": 512})",
    R"({"tags": "ble"})",
    R"({"tags": ["ble", "thread"]})",
    R"({"tags": {"$size": 0}})",
    R"({"tags": {"$all": ["ble", "thread"]}})",
    R"({"tags": {"$elemMatch": {"$regex": "^th"}}})",
    R"({"usb.port": 2})",
    R"({"usb.port": {"$gt": 1}})",
    R"({"usb": {"$elemMatch": {"port": 1}}})",
    R"({"matrix.0": 1})",
    R"({"matrix": [3]})",
    R"({"a.b": 2})",
    R"({"a.b": 1})",
    R"({"list.0": "zero"})",
    R"({"list.0.0": "zero"})",
    R"({"n": 0})",
    R"({"n": false})",
    R"({"big": {"$gt": 1e299}})",
    R"({"os": {"$regex": "^android$", "$options": "i"}})",
    R"({"os": {"$not": {"$regex": "^A"}}})",
    R"({"$or": [{"os": "iOS"}, {"board.rev": 3}]})",
    R"({"$nor": [{"os": "Android"}, {"online": false}]})",
    R"({"$and": [{"online": true}, {"$or": [{"rev": 2}, {"board": 7}]}]})",
    "os=Android&board.rev=2",
    "rev=2",
    "board.rev=2",
    "online=null&hostname=null",
    "online=True",
    R"({"rev": {"$type": "int"}})",
    R"({"rev": {"$type": ["double", "string"]}})",
    R"({"board.rev": {"$type": "number"}})",
    R"({"board": {"$type": "array"}})",
    R"({"board.rev": {"$type": "array"}})",
    R"({"rev": {"$mod": [2, 0]}})",
    R"({"board.rev": {"$mod": [3, 0]}})",
    R"({"rev": {"$mod": [2, -1]}})",
    R"({"tags": {"$size": {"$gte": 1}}})",
    R"({"board.rev": {"$size": {"$lt": 3}}})",
    R"({"usb": {"$all": [{"$elemMatch": {"port": 1}}, {"$elemMatch": {"port": 2}}]}})",
    R"({"matrix": {"$elemMatch": {"$gte": 1, "$lte": 1}}})",
    R"({"os": {"$regex": "/^ANDROID$/i"}})",
    R"({"os": {"$regex": "^ a n d # comment", "$options": "xi"}})",
};

TEST(ResourceIndex, AgreesWithTheTreeMatcherOnEveryShape) {
  for (const char* text : kQueries) {
    for (const auto& requirements :
         {Requirements::parse(text), Requirements::parse(text).with_implicit_filters("rig-01")}) {
      EXPECT_EQ(detail::indexed_matches(shapes(), requirements),
                detail::scan_matches(shapes(), requirements))
          << requirements.to_string();
    }
  }
}

TEST(ResourceIndex, FindsWhatTheQueryDescribes) {
  // Fixed answers, so that the index is not merely as wrong as the scan.
  const auto indexed = [](const char* text) {
    return detail::indexed_matches(shapes(), Requirements::parse(text));
  };
  using Rows = std::vector<std::size_t>;
  EXPECT_EQ(indexed(R"({"rev": 2})"), (Rows{0, 1}));           // 2 and 2.0, not "2"
  EXPECT_EQ(indexed(R"({"board.rev": 2})"), (Rows{0, 2, 4}));  // object, array, contains
  EXPECT_EQ(indexed(R"({"board.1.rev": 3})"), (Rows{2}));      // numeric step into an array
  EXPECT_EQ(indexed(R"({"usb.port": 2})"), (Rows{3, 5}));      // array of objects, object
  EXPECT_EQ(indexed(R"({"a.b": 2})"), (Rows{4}));              // a path, not a dotted key
  EXPECT_EQ(indexed(R"({"os": {"$exists": false}})"), (Rows{2, 5}));
  EXPECT_EQ(indexed("online=true&hostname=rig-01&os=Android"), (Rows{0, 4}));
}

TEST(ResourceIndex, MatchesAttributesThatAreNotAnObject) {
  // Only a hand-built list can hold these; the tree matcher's answer stands for them.
  const Resources odd = from_json_list(Json::array(
      {Json{{"os", "A"}}, Json::array({Json{{"os", "A"}}}), Json("text"), Json{{"os", "B"}}}));
  for (const char* text : {R"({"os": "A"})", R"({"os": {"$exists": false}})", "{}"}) {
    const auto requirements = Requirements::parse(text);
    EXPECT_EQ(detail::indexed_matches(odd, requirements), detail::scan_matches(odd, requirements))
        << text;
  }
}

// Random attribute values and queries over a small vocabulary, so that they often meet.
class RandomShapes {
 public:
  explicit RandomShapes(unsigned seed) : random_(seed) {}

  Json value(int depth) {
    switch (pick(depth > 1 ? 7 : 9)) {
      case 0:
        return pick(2) == 0;
      case 1:
        return static_cast<int>(pick(4));
      case 2:
        return static_cast<double>(pick(4)) * 0.5;
      case 3:
        return kWords[pick(kWordCount)];
      case 4:
        return nullptr;
      case 5:
      case 6:
        return std::to_string(pick(3));
      case 7: {
        Json list = Json::array();
        for (std::size_t i = pick(4); i > 0; --i) list.push_back(value(depth + 1));
        return list;
      }
      default:
        return object(depth + 1);
    }
  }

  Json object(int depth) {
    Json result = Json::object();
    for (std::size_t i = pick(4); i > 0; --i) result[key()] = value(depth);
    return result;
  }

  std::string path() {
    std::string text = key();
    for (std::size_t i = pick(3); i > 0; --i) text += "." + (pick(4) == 0 ? "0" : key());
    return text;
  }

  Json condition() {
    const Json operand = value(2);
    switch (pick(16)) {
      case 0:
        return Json{{"$gt", operand}};
      case 1:
        return Json{{"$lte", operand}};
      case 2:
        return Json{{"$in", Json::array({operand, value(2)})}};
      case 3:
        return Json{{"$nin", Json::array({operand})}};
      case 4:
        return Json{{"$exists", pick(2) == 0}};
      case 5:
        return Json{{"$ne", operand}};
      case 6:
        return Json{{"$regex", "^" + std::string(kWords[pick(kWordCount)]).substr(0, 2)}};
      case 7:
        return Json{{"$size", pick(3)}};
      case 8:
        return Json{{"$elemMatch", Json{{"$gte", static_cast<int>(pick(3))}}}};
      case 9:
        return Json{{"$not", Json{{"$eq", operand}}}};
      case 10: {
        const char* const kTypes[] = {"number", "int", "double", "string", "array", "null"};
        return Json{{"$type", kTypes[pick(6)]}};
      }
      case 11:
        return Json{
            {"$mod", Json::array({static_cast<int>(pick(3)) + 1, static_cast<int>(pick(2))})}};
      case 12:
        return Json{{"$size", Json{{"$gte", static_cast<int>(pick(3))}}}};
      case 13:
        return Json{{"$all", Json::array({Json{{"$elemMatch", Json{{"$gte", operand}}}},
                                          Json{{"$elemMatch", Json{{"$ne", value(2)}}}}})}};
      default:
        return operand;
    }
  }

  Json query(int depth = 0) {
    Json result = Json::object();
    for (std::size_t i = pick(3) + 1; i > 0; --i) {
      if (depth < 2 && pick(5) == 0) {
        const char* const kLogical[] = {"$and", "$or", "$nor"};
        result[kLogical[pick(3)]] = Json::array({query(depth + 1), query(depth + 1)});
      } else {
        result[path()] = condition();
      }
    }
    return result;
  }

 private:
  static constexpr const char* kWords[] = {"Android", "iOS", "Pixel 7", "nRF", "a", "b"};
  static constexpr std::size_t kWordCount = sizeof kWords / sizeof kWords[0];

  std::size_t pick(std::size_t count) {
    return std::uniform_int_distribution<std::size_t>(0, count - 1)(random_);
  }
  std::string key() { return std::string(1, static_cast<char>('a' + pick(4))); }

  std::mt19937 random_;
};

TEST(ResourceIndex, AgreesWithTheTreeMatcherOnRandomShapes) {
  RandomShapes random(20261123);
  std::size_t nonempty = 0;
  for (int round = 0; round < 40; ++round) {
    Json list = Json::array();
    for (int i = 0; i < 100; ++i) list.push_back(random.object(0));
    const Resources resources = from_json_list(list);
    for (int q = 0; q < 100; ++q) {
      const Json query = random.query();
      Requirements requirements;
      try {
        requirements = Requirements::from_json(query);
      } catch (const RequirementsError&) {
        continue;  // e.g. a $regex built from an operand that is not a string
      }
      const auto expected = detail::scan_matches(resources, requirements);
      nonempty += expected.empty() ? 0 : 1;
      ASSERT_EQ(detail::indexed_matches(resources, requirements), expected)
          << "query " << query.dump() << "\nresources " << list.dump();
    }
  }
  // The generator must produce queries that select something, or the comparison proves little.
  EXPECT_GT(nonempty, 400u);
}

TEST(ResourceIndex, LargeListsOfMostlyDistinctValuesMatchExactly) {
  // Past the index threshold, and with serial numbers all distinct (the index stops building a
  // dictionary for such a path), the answer is still the scan's, in input order.
  std::vector<Resource> list;
  for (int i = 0; i < 20011; ++i) {
    const std::string id = "dut-" + std::to_string(i);
    list.push_back(Resource{id, Json{{"id", id},
                                     {"rev", i % 7},
                                     {"serial", "SN" + std::to_string(i * 7919)},
                                     {"model", i % 5 == 0 ? "Pixel" : "Galaxy"}}});
  }
  const Resources resources(std::move(list));
  for (const char* text :
       {R"({"rev": {"$in": [1, 6]}, "model": {"$regex": "^Pix"}})",
        R"({"serial": {"$regex": "7$"}, "rev": {"$ne": 3}})", R"({"serial": "SN79190"})"}) {
    const auto requirements = Requirements::parse(text);
    const auto expected = detail::scan_matches(resources, requirements);
    ASSERT_FALSE(expected.empty()) << text;
    EXPECT_EQ(find_matches(resources, requirements), expected) << text;
  }
  EXPECT_EQ(find_matches(resources, Requirements::parse(R"({"serial": "SN79190"})")),
            (std::vector<std::size_t>{10}));
}

TEST(ResourceIndex, CopiesShareOneListAndThreadsShareOneIndex) {
  std::vector<Resource> list;
  for (int i = 0; i < 500; ++i) {
    list.push_back(Resource{"d" + std::to_string(i), Json{{"rev", i % 3}}});
  }
  const Resources resources(std::move(list));
  const Resources copy = resources;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_EQ(&copy.list(), &resources.list());

  const auto requirements = Requirements::parse("rev=1");
  const auto expected = detail::scan_matches(resources, requirements);
  ASSERT_EQ(expected.size(), 167u);
  // The first matches race to build the index; every thread must see the finished one.
  std::vector<std::vector<std::size_t>> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back(
        [&, t] { results[t] = find_matches(t % 2 ? copy : resources, requirements); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
  EXPECT_EQ(&detail::index_of(copy), &detail::index_of(resources));
}

}  // namespace
}  // namespace lockable
