// The figures of `lockable report` and their text forms (text, JSON, CSV, OpenMetrics).

#include "core/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace lockable::metrics {
namespace {

bool granted(const AllocationRecord& record) {
  return record.outcome == Outcome::kReleased || record.outcome == Outcome::kLost;
}

double hold_end(const AllocationRecord& record) {
  return record.end ? *record.end : *record.start + record.duration.value_or(0);
}

// When the request ended: the release of a grant, the end of a request that got nothing.
double moment(const AllocationRecord& record) {
  if (granted(record)) return hold_end(record);
  return record.end.value_or(0);
}

struct GroupBuilder {
  GroupFigures figures;
  std::set<std::string> devices;
  std::vector<double> queue;

  void add(const AllocationRecord& record) {
    ++figures.requests;
    if (record.queued) ++figures.waited;
    queue.push_back(record.queue_time);
    switch (record.outcome) {
      case Outcome::kReleased:
      case Outcome::kLost:
        ++figures.allocations;
        devices.insert(record.resource_id);
        if (record.outcome == Outcome::kLost) ++figures.losses;
        break;
      case Outcome::kTimedOut:
        ++figures.timeouts;
        break;
      default:
        ++figures.failures;
    }
  }

  GroupFigures finish(const std::string& name) {
    figures.name = name;
    figures.devices.assign(devices.begin(), devices.end());
    figures.queue_time = distribution_of(std::move(queue));
    return std::move(figures);
  }
};

std::string fixed(double value, int digits = 3) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

Json distribution_json(const Distribution& d) {
  return Json{
      {"count", d.count}, {"total", d.sum}, {"median", d.median}, {"p95", d.p95}, {"max", d.max}};
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string label_value(const std::string& text) {
  std::string escaped;
  for (const char c : text) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '"') {
      escaped += "\\\"";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

}  // namespace

Distribution distribution_of(std::vector<double> values) {
  Distribution d;
  d.count = values.size();
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  for (const double v : values) d.sum += v;
  const std::size_t n = values.size();
  d.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  // Nearest rank: the smallest value with at least 95% of the values at or below it.
  const auto rank = static_cast<std::size_t>(std::ceil(0.95 * static_cast<double>(n)));
  d.p95 = values[std::max<std::size_t>(rank, 1) - 1];
  d.max = values.back();
  return d;
}

Report compute_report(std::vector<AllocationRecord> records, const Window& window) {
  Report report;
  std::vector<AllocationRecord*> inside;
  for (auto& record : records) {
    if (granted(record)) {
      if (!record.start) continue;
      if (window.since && hold_end(record) < *window.since) continue;
      if (window.until && *record.start > *window.until) continue;
    } else {
      const double at = moment(record);
      if (window.since && at < *window.since) continue;
      if (window.until && at > *window.until) continue;
    }
    inside.push_back(&record);
  }
  if (inside.empty()) {
    report.window_start = window.since.value_or(window.until.value_or(0));
    report.window_end = window.until.value_or(report.window_start);
    return report;
  }

  double first = 0, last = 0;
  bool any = false;
  for (const auto* record : inside) {
    const double begin = granted(*record) ? *record->start : moment(*record);
    const double end = moment(*record);
    if (!any || begin < first) first = begin;
    if (!any || end > last) last = end;
    any = true;
  }
  report.window_start = window.since.value_or(first);
  report.window_end = window.until.value_or(last);
  const double length = report.window_end - report.window_start;

  std::map<std::string, DeviceFigures> devices;
  std::map<std::string, std::vector<double>> device_queue;
  std::map<std::string, GroupBuilder> suites;
  std::map<std::string, GroupBuilder> requirements;
  std::vector<double> all_queue;
  for (const auto* record : inside) {
    suites[record->label].add(*record);
    requirements[record->requirements].add(*record);
    if (granted(*record)) {
      auto& device = devices[record->resource_id];
      ++device.allocations;
      // The duration as recorded, less what lies outside the window: end - start of times
      // around 1.8e9 s would lose the microseconds.
      double hold = record->duration ? *record->duration : hold_end(*record) - *record->start;
      if (*record->start < report.window_start) hold -= report.window_start - *record->start;
      if (hold_end(*record) > report.window_end) hold -= hold_end(*record) - report.window_end;
      device.total_hold += std::max(0.0, hold);
      if (record->outcome == Outcome::kLost) ++device.losses;
      device_queue[record->resource_id].push_back(record->queue_time);
      all_queue.push_back(record->queue_time);
    } else if (record->outcome == Outcome::kTimedOut) {
      for (const auto& id : record->candidates) ++devices[id].timeouts;
    }
  }
  for (auto& [id, device] : devices) {
    device.resource_id = id;
    if (device.allocations > 0) {
      device.mean_hold = device.total_hold / static_cast<double>(device.allocations);
    }
    device.utilization = length > 0 ? device.total_hold / length : 0;
    device.queue_time = distribution_of(std::move(device_queue[id]));
    report.devices.push_back(std::move(device));
  }
  for (auto& [name, builder] : suites) report.suites.push_back(builder.finish(name));
  for (auto& [name, builder] : requirements) report.requirements.push_back(builder.finish(name));
  report.queue_time = distribution_of(std::move(all_queue));
  // Sorted as pointers, then moved once: records are large.
  std::stable_sort(
      inside.begin(), inside.end(), [](const AllocationRecord* a, const AllocationRecord* b) {
        return (a->start ? *a->start : moment(*a)) < (b->start ? *b->start : moment(*b));
      });
  report.records.reserve(inside.size());
  for (auto* record : inside) report.records.push_back(std::move(*record));
  return report;
}

std::string format_text(const Report& report) {
  std::string out;
  if (report.devices.empty() && report.suites.empty()) return "no allocations to report\n";
  out += "window: " + format_timestamp(report.window_start) + " .. " +
         format_timestamp(report.window_end) + " (" +
         fixed(report.window_end - report.window_start) + " s)\n\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-24s %6s %11s %10s %6s %10s %10s %10s %6s %8s\n", "device",
                "allocs", "hold s", "mean s", "util", "queue p50", "queue p95", "queue max", "lost",
                "timeouts");
  out += line;
  for (const auto& d : report.devices) {
    std::snprintf(
        line, sizeof line, "%-24s %6zu %11.3f %10.3f %5.1f%% %10.3f %10.3f %10.3f %6zu %8zu\n",
        d.resource_id.c_str(), d.allocations, d.total_hold, d.mean_hold, d.utilization * 100,
        d.queue_time.median, d.queue_time.p95, d.queue_time.max, d.losses, d.timeouts);
    out += line;
  }
  const auto groups = [&](const char* title, const std::vector<GroupFigures>& list) {
    out += "\n";
    std::snprintf(line, sizeof line, "%-40s %6s %6s %6s %10s %10s %10s %8s %s\n", title, "reqs",
                  "allocs", "waited", "queue p50", "queue p95", "queue max", "timeouts", "devices");
    out += line;
    for (const auto& g : list) {
      std::string devices;
      for (const auto& id : g.devices) devices += (devices.empty() ? "" : ",") + id;
      std::snprintf(line, sizeof line, "%-40s %6zu %6zu %6zu %10.3f %10.3f %10.3f %8zu ",
                    (g.name.empty() ? std::string("(none)") : g.name).c_str(), g.requests,
                    g.allocations, g.waited, g.queue_time.median, g.queue_time.p95,
                    g.queue_time.max, g.timeouts);
      out += line + devices + "\n";
    }
  };
  groups("suite / command", report.suites);
  groups("requirements", report.requirements);
  return out;
}

std::string format_json(const Report& report, const std::vector<InputProblem>& problems) {
  Json json = Json::object();
  json["window"] = {{"start", format_timestamp(report.window_start)},
                    {"end", format_timestamp(report.window_end)},
                    {"seconds", report.window_end - report.window_start}};
  json["devices"] = Json::array();
  for (const auto& d : report.devices) {
    json["devices"].push_back({{"resource_id", d.resource_id},
                               {"allocations", d.allocations},
                               {"total_hold", d.total_hold},
                               {"mean_hold", d.mean_hold},
                               {"utilization", d.utilization},
                               {"queue_time", distribution_json(d.queue_time)},
                               {"losses", d.losses},
                               {"timeouts", d.timeouts}});
  }
  const auto groups = [](const std::vector<GroupFigures>& list, const char* key) {
    Json array = Json::array();
    for (const auto& g : list) {
      array.push_back({{key, g.name},
                       {"requests", g.requests},
                       {"allocations", g.allocations},
                       {"devices", g.devices},
                       {"waited", g.waited},
                       {"queue_time", distribution_json(g.queue_time)},
                       {"losses", g.losses},
                       {"timeouts", g.timeouts},
                       {"failures", g.failures}});
    }
    return array;
  };
  json["suites"] = groups(report.suites, "name");
  json["requirements"] = groups(report.requirements, "requirements");
  json["queue_time"] = distribution_json(report.queue_time);
  json["records"] = report.records.size();
  json["problems"] = Json::array();
  for (const auto& p : problems) {
    json["problems"].push_back({{"file", p.file}, {"line", p.line}, {"message", p.message}});
  }
  return json.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string format_csv(const Report& report) {
  std::string out =
      "section,name,allocations,requests,waited,total_hold_s,mean_hold_s,utilization,"
      "queue_median_s,queue_p95_s,queue_max_s,losses,timeouts\n";
  for (const auto& d : report.devices) {
    out += "device," + csv_field(d.resource_id) + "," + std::to_string(d.allocations) + ",,," +
           fixed(d.total_hold, 6) + "," + fixed(d.mean_hold, 6) + "," + fixed(d.utilization, 6) +
           "," + fixed(d.queue_time.median, 6) + "," + fixed(d.queue_time.p95, 6) + "," +
           fixed(d.queue_time.max, 6) + "," + std::to_string(d.losses) + "," +
           std::to_string(d.timeouts) + "\n";
  }
  const auto groups = [&](const char* section, const std::vector<GroupFigures>& list) {
    for (const auto& g : list) {
      out += std::string(section) + "," + csv_field(g.name) + "," + std::to_string(g.allocations) +
             "," + std::to_string(g.requests) + "," + std::to_string(g.waited) + ",,,," +
             fixed(g.queue_time.median, 6) + "," + fixed(g.queue_time.p95, 6) + "," +
             fixed(g.queue_time.max, 6) + "," + std::to_string(g.losses) + "," +
             std::to_string(g.timeouts) + "\n";
    }
  };
  groups("suite", report.suites);
  groups("requirements", report.requirements);
  return out;
}

std::string format_openmetrics(const Report& report) {
  std::string out;
  const auto family = [&](const char* name, const char* type, const char* unit, const char* help) {
    out += std::string("# TYPE ") + name + " " + type + "\n";
    if (*unit != '\0') out += std::string("# UNIT ") + name + " " + unit + "\n";
    out += std::string("# HELP ") + name + " " + help + "\n";
  };
  const auto sample = [&](const std::string& name, const std::string& labels, double value) {
    out += name + "{" + labels + "} " + number(value) + "\n";
  };
  const auto device_label = [](const DeviceFigures& d) {
    return "resource_id=\"" + label_value(d.resource_id) + "\"";
  };
  family("lockable_device_allocations", "counter", "", "Allocations of the device in the window.");
  for (const auto& d : report.devices) {
    sample("lockable_device_allocations_total", device_label(d),
           static_cast<double>(d.allocations));
  }
  family("lockable_device_hold_seconds", "counter", "seconds",
         "Time the device was held in the window.");
  for (const auto& d : report.devices) {
    sample("lockable_device_hold_seconds_total", device_label(d), d.total_hold);
  }
  family("lockable_device_utilization_ratio", "gauge", "ratio",
         "Share of the window the device was held.");
  for (const auto& d : report.devices) {
    sample("lockable_device_utilization_ratio", device_label(d), d.utilization);
  }
  family("lockable_device_queue_seconds", "summary", "seconds",
         "Queue time of the device's allocations.");
  for (const auto& d : report.devices) {
    sample("lockable_device_queue_seconds", device_label(d) + ",quantile=\"0.5\"",
           d.queue_time.median);
    sample("lockable_device_queue_seconds", device_label(d) + ",quantile=\"0.95\"",
           d.queue_time.p95);
    sample("lockable_device_queue_seconds", device_label(d) + ",quantile=\"1\"", d.queue_time.max);
    sample("lockable_device_queue_seconds_sum", device_label(d), d.queue_time.sum);
    sample("lockable_device_queue_seconds_count", device_label(d),
           static_cast<double>(d.queue_time.count));
  }
  family("lockable_device_losses", "counter", "", "Locks of the device lost while held.");
  for (const auto& d : report.devices) {
    sample("lockable_device_losses_total", device_label(d), static_cast<double>(d.losses));
  }
  family("lockable_device_timeouts", "counter", "",
         "Requests that timed out while the device was one they could use.");
  for (const auto& d : report.devices) {
    sample("lockable_device_timeouts_total", device_label(d), static_cast<double>(d.timeouts));
  }
  out += "# EOF\n";
  return out;
}

}  // namespace lockable::metrics
