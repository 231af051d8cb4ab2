// find_matches over generated resources with a three-key requirement that includes a $regex,
// plus the implicit online/hostname filters. Prints medians; asserts nothing about time.
#include <lockable/requirements.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

// Deterministic mix: about half Android, a third of those with a new enough board, some offline
// or on another host, so every clause (including the regex) decides for some resources. The
// list goes through JSON text and parse_resources_text, as a resources.json file would, so the
// attributes sit in memory as they do in real use.
lockable::Resources generate(std::size_t count) {
  static const char* const kModels[] = {"Pixel 7", "Pixel 8", "Galaxy S23", "Pixel Fold", "iPhone"};
  lockable::Json list = lockable::Json::array();
  for (std::size_t i = 0; i < count; ++i) {
    list.push_back({
        {"id", "dut-" + std::to_string(i)},
        {"online", i % 10 != 0},
        {"hostname", i % 7 == 0 ? "rig-02" : "rig-01"},
        {"os", i % 2 == 0 ? "Android" : "iOS"},
        {"model", kModels[i % 5]},
        {"board", {{"name", "nRF52840-DK"}, {"rev", static_cast<int>(i % 4)}}},
        {"serial", "SN" + std::to_string(i * 7919)},
        {"tags", {"ble", i % 3 == 0 ? "thread" : "can"}},
    });
  }
  return lockable::parse_resources_text(list.dump(), "generated.json");
}

void BM_FindMatches(benchmark::State& state) {
  const auto resources = generate(static_cast<std::size_t>(state.range(0)));
  const auto requirements =
      lockable::Requirements::parse(
          R"({"os": "Android", "board.rev": {"$gte": 2}, "model": {"$regex": "^Pixel [0-9]+$"}})")
          .with_implicit_filters("rig-01");
  std::size_t matched = 0;
  for (auto _ : state) {
    const auto matches = lockable::find_matches(resources, requirements);
    matched = matches.size();
    benchmark::DoNotOptimize(matches.data());
  }
  state.counters["matches"] = static_cast<double>(matched);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_FindMatches)
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
