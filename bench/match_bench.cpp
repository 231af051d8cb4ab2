// find_matches over generated resources with a three-key requirement that includes a $regex,
// plus the implicit online/hostname filters: with the index warm (the figure the target is set
// on), on the first match after a load (index built), on a field of distinct values (the
// index's worst case), and the load itself. Prints medians; asserts nothing about time.
#include <lockable/requirements.hpp>

#include <benchmark/benchmark.h>

#include <optional>
#include <string>

namespace {

// Deterministic mix: about half Android, a third of those with a new enough board, some offline
// or on another host, so every clause (including the regex) decides for some resources. The
// list goes through JSON text and parse_resources_text, as a resources.json file would, so the
// attributes sit in memory as they do in real use.
std::string generate_text(std::size_t count) {
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
  return list.dump();
}

lockable::Resources generate(std::size_t count) {
  return lockable::parse_resources_text(generate_text(count), "generated.json");
}

lockable::Requirements three_keys_with_regex() {
  return lockable::Requirements::
      parse(R"({"os": "Android", "board.rev": {"$gte": 2}, "model": {"$regex": "^Pixel [0-9]+$"}})")
          .with_implicit_filters("rig-01");
}

void BM_FindMatches(benchmark::State& state) {
  const auto resources = generate(static_cast<std::size_t>(state.range(0)));
  const auto requirements = three_keys_with_regex();
  // The index is built on the first match over a list and reused while the list is unchanged;
  // BM_FirstMatch measures that first call.
  benchmark::DoNotOptimize(lockable::find_matches(resources, requirements));
  std::size_t matched = 0;
  for (auto _ : state) {
    const auto matches = lockable::find_matches(resources, requirements);
    matched = matches.size();
    benchmark::DoNotOptimize(matches.data());
  }
  state.counters["matches"] = static_cast<double>(matched);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// The first match after a (re)load: the index is built inside this call. Each iteration gets a
// freshly parsed list, as a reload would give; parsing is not timed.
void BM_FirstMatch(benchmark::State& state) {
  const auto text = generate_text(static_cast<std::size_t>(state.range(0)));
  const auto requirements = three_keys_with_regex();
  std::optional<lockable::Resources> resources;
  for (auto _ : state) {
    state.PauseTiming();
    resources.reset();
    resources.emplace(lockable::parse_resources_text(text, "generated.json"));
    state.ResumeTiming();
    benchmark::DoNotOptimize(lockable::find_matches(*resources, requirements).data());
  }
}

// The worst case for the index: a regex on a field whose every value is distinct, so the
// condition runs once per resource, as a plain scan would.
void BM_FindMatchesDistinctField(benchmark::State& state) {
  const auto resources = generate(static_cast<std::size_t>(state.range(0)));
  const auto requirements =
      lockable::Requirements::parse(R"({"serial": {"$regex": "7$"}, "os": "Android"})")
          .with_implicit_filters("rig-01");
  benchmark::DoNotOptimize(lockable::find_matches(resources, requirements));
  for (auto _ : state) {
    benchmark::DoNotOptimize(lockable::find_matches(resources, requirements).data());
  }
}

// Reading and validating resources.json text, for scale: a reload costs this plus the first match.
void BM_Load(benchmark::State& state) {
  const auto text = generate_text(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(lockable::parse_resources_text(text, "generated.json").size());
  }
}

// 1k, 10k and 100k resources; medians of 5 repetitions in milliseconds.
void over_list_sizes(benchmark::internal::Benchmark* benchmark) {
  benchmark->Arg(1000)->Arg(10000)->Arg(100000);
  benchmark->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);
}

BENCHMARK(BM_FindMatches)->Apply(over_list_sizes);
// These parse a list per iteration (paused or timed), so few iterations keep the run short.
BENCHMARK(BM_FirstMatch)->Apply(over_list_sizes)->Iterations(3);
BENCHMARK(BM_FindMatchesDistinctField)->Apply(over_list_sizes);
BENCHMARK(BM_Load)->Apply(over_list_sizes)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
