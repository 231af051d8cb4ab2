// `lockable report --html`: one self-contained page (inline CSS and SVG; no script, font or
// image fetched), readable for 2 devices and for 200: devices sorted by utilization, the busiest
// first and named at the top, so that the bottleneck is the first thing one sees.

#include "core/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace lockable::metrics {
namespace {

constexpr double kTimelineWidth = 900;

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(double value, int digits = 1) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

// A readable duration: "850 ms", "12.3 s", "4.2 min", "1.5 h".
std::string duration(double seconds) {
  if (seconds < 1) return num(seconds * 1000, 0) + " ms";
  if (seconds < 120) return num(seconds, 1) + " s";
  if (seconds < 7200) return num(seconds / 60, 1) + " min";
  return num(seconds / 3600, 1) + " h";
}

// The same label always gets the same colour, so one suite is recognisable across devices.
std::string colour(const std::string& label) {
  std::uint32_t hash = 2166136261u;
  for (const char c : label) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
  return "hsl(" + std::to_string(hash % 360) + ",55%,52%)";
}

bool granted(const AllocationRecord& r) {
  return r.outcome == Outcome::kReleased || r.outcome == Outcome::kLost;
}

struct Scale {
  double start = 0;
  double length = 1;
  double x(double t) const {
    return std::clamp((t - start) / length * kTimelineWidth, 0.0, kTimelineWidth);
  }
};

constexpr const char* kStyle = R"(
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.summary{color:#555;margin-bottom:12px}.bottleneck{background:#fff4e5;border-left:4px solid #e8710a;padding:8px 12px;margin:12px 0}
.legend span{display:inline-block;margin-right:18px}.swatch{display:inline-block;width:22px;height:10px;vertical-align:middle;margin-right:5px}
.devices{display:grid;grid-template-columns:minmax(120px,200px) 160px 900px;column-gap:12px;align-items:center}
.device-row{display:contents}.device-row>div{border-bottom:1px solid #eee}
.name{font-family:ui-monospace,monospace;font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.util{position:relative;height:14px;background:#eef1f4;border-radius:2px}.util>div{height:100%;border-radius:2px}
.util>span{position:absolute;right:4px;top:-1px;font-size:11px}
.compact .name{font-size:10px}.compact .util{height:8px}.compact .util>span{display:none}
svg{display:block}.hold{stroke:#fff;stroke-width:.5}.wait{fill:#9aa4ad;opacity:.55}
.timeout{fill:#d93025;opacity:.35}.lost{fill:#d93025}.axis text{font-size:10px;fill:#666}
.bar text{font-size:10px;fill:#fff;pointer-events:none}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left;font-family:ui-monospace,monospace;max-width:420px;overflow-wrap:anywhere}
.problems{color:#a50e0e;font-family:ui-monospace,monospace;font-size:12px}
)";

}  // namespace

std::string format_html(const Report& report, const std::vector<InputProblem>& problems) {
  std::vector<const DeviceFigures*> devices;
  for (const auto& d : report.devices) devices.push_back(&d);
  // The bottleneck first: utilization, then queue time.
  std::stable_sort(devices.begin(), devices.end(), [](const auto* a, const auto* b) {
    if (a->utilization != b->utilization) return a->utilization > b->utilization;
    return a->queue_time.p95 > b->queue_time.p95;
  });
  const bool compact = devices.size() > 40;
  const double row = compact ? 9 : 20;
  const Scale scale{report.window_start, std::max(report.window_end - report.window_start, 1e-6)};

  std::map<std::string, std::vector<const AllocationRecord*>> by_device;
  for (const auto& r : report.records) {
    if (granted(r)) {
      by_device[r.resource_id].push_back(&r);
    } else if (r.outcome == Outcome::kTimedOut) {
      for (const auto& id : r.candidates) by_device[id].push_back(&r);
    }
  }

  std::string out;
  out.reserve(4096 + report.records.size() * 300);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\">"
      "<title>lockable report</title><style>";
  out += kStyle;
  out += "</style></head><body>\n<h1>Device allocations</h1>\n<div class=\"summary\">";
  out += escape(format_timestamp(report.window_start)) + " &ndash; " +
         escape(format_timestamp(report.window_end)) + " (" +
         duration(report.window_end - report.window_start) + "), " +
         std::to_string(report.devices.size()) + " devices, " +
         std::to_string(report.queue_time.count) + " allocations, queue time median " +
         duration(report.queue_time.median) + ", 95th percentile " +
         duration(report.queue_time.p95) + ", max " + duration(report.queue_time.max) + "</div>\n";
  if (!devices.empty()) {
    const auto* top = devices.front();
    out += "<div class=\"bottleneck\" id=\"bottleneck\">Busiest device: <b>" +
           escape(top->resource_id) + "</b>, held " + num(top->utilization * 100) +
           "% of the time, " + std::to_string(top->allocations) +
           " allocations, queue time 95th percentile " + duration(top->queue_time.p95) +
           (top->timeouts > 0 ? ", " + std::to_string(top->timeouts) + " timeouts" : "") +
           ".</div>\n";
  }
  if (!problems.empty()) {
    out += "<h2>Input not counted</h2><div class=\"problems\">";
    for (const auto& p : problems) out += escape(p.to_string()) + "<br>\n";
    out += "</div>\n";
  }

  out +=
      "<h2>Timeline per device</h2>\n<div class=\"legend\">"
      "<span><i class=\"swatch\" style=\"background:hsl(210,55%,52%)\"></i>held (colour: "
      "suite or command)</span><span><i class=\"swatch\" style=\"background:#9aa4ad;"
      "opacity:.55\"></i>waiting in the queue</span><span><i class=\"swatch\" "
      "style=\"background:#d93025;opacity:.35\"></i>wait that timed out</span><span><i "
      "class=\"swatch\" style=\"background:#d93025;width:10px\"></i>lock lost</span></div>\n";
  out += std::string("<div class=\"devices") + (compact ? " compact" : "") + "\">\n";
  // Time axis.
  out += "<div></div><div></div><div><svg class=\"axis\" width=\"900\" height=\"16\">";
  for (int i = 0; i <= 4; ++i) {
    const double t = report.window_start + scale.length * i / 4;
    // Milliseconds where the window is short.
    const std::string text = format_timestamp(t).substr(11, scale.length < 60 ? 12 : 8);
    out += "<text x=\"" + num(i * kTimelineWidth / 4, 0) + "\" y=\"12\" text-anchor=\"" +
           (i == 0   ? "start"
            : i == 4 ? "end"
                     : "middle") +
           "\">" + text + "</text>";
  }
  out += "</svg></div>\n";
  for (const auto* d : devices) {
    out += "<div class=\"device-row\" data-resource-id=\"" + escape(d->resource_id) +
           "\"><div class=\"name\" title=\"" + escape(d->resource_id) + "\">" +
           escape(d->resource_id) + "</div><div class=\"util\" title=\"utilization " +
           num(d->utilization * 100) +
           "%\"><div style=\"width:" + num(std::min(d->utilization, 1.0) * 100) + "%;background:" +
           (d->utilization > 0.8   ? "#d93025"
            : d->utilization > 0.5 ? "#e8710a"
                                   : "#1a73e8") +
           "\"></div><span>" + num(d->utilization * 100, 0) +
           "%</span></div><div><svg class=\"bar\" width=\"900\" height=\"" + num(row, 0) + "\">";
    // Waits first, so that no wait is drawn over an earlier hold of the row.
    for (const auto* r : by_device[d->resource_id]) {
      if (!granted(*r) || r->queue_time <= 0) continue;
      const double wait_begin = scale.x(*r->start - r->queue_time);
      out += "<rect class=\"wait\" x=\"" + num(wait_begin) + "\" y=\"" + num(row * 0.3) +
             "\" width=\"" + num(std::max(scale.x(*r->start) - wait_begin, 0.5)) + "\" height=\"" +
             num(row * 0.4) + "\"><title>" + escape(r->label) + ": waited " +
             duration(r->queue_time) + "</title></rect>";
    }
    for (const auto* r : by_device[d->resource_id]) {
      if (!granted(*r)) {
        const double begin = scale.x(*r->end - r->queue_time);
        const double end = scale.x(*r->end);
        out += "<rect class=\"timeout\" x=\"" + num(begin) + "\" y=\"" + num(row * 0.25) +
               "\" width=\"" + num(std::max(end - begin, 1.0)) + "\" height=\"" + num(row * 0.5) +
               "\"><title>" + escape(r->label) + ": timed out after " + duration(r->queue_time) +
               "</title></rect>";
        continue;
      }
      const double start = *r->start;
      const double stop = r->end ? *r->end : start + r->duration.value_or(0);
      const double x = scale.x(start);
      const double width = std::max(scale.x(stop) - x, 1.0);
      out += "<rect class=\"hold\" x=\"" + num(x) + "\" y=\"1\" width=\"" + num(width) +
             "\" height=\"" + num(row - 2) + "\" fill=\"" + colour(r->label) + "\"><title>" +
             escape(r->label) + " held " + escape(r->resource_id) + " " +
             duration(r->duration.value_or(stop - start)) + " from " +
             escape(format_timestamp(start)) +
             (r->alloc_id.empty() ? "" : " (" + escape(r->alloc_id) + ")") + "</title></rect>";
      // The label where it fits (about 6 px per character).
      if (!compact && width > 6.0 * static_cast<double>(r->label.size()) + 6) {
        out += "<text x=\"" + num(x + 3) + "\" y=\"" + num(row - 6) + "\">" + escape(r->label) +
               "</text>";
      }
      if (r->outcome == Outcome::kLost) {
        const double end = scale.x(stop);
        out += "<path class=\"lost\" d=\"M" + num(end - 5) + " 0H" + num(end + 5) + "L" + num(end) +
               " " + num(row) + "Z\"><title>lost: " + escape(r->reason) + "</title></path>";
      }
    }
    out += "</svg></div></div>\n";
  }
  out += "</div>\n";

  // Queue-time histogram over every granted allocation.
  const double edges[] = {0, 0.01, 0.1, 1, 10, 60, 600};
  const char* names[] = {"< 10 ms", "10-100 ms", "0.1-1 s", "1-10 s",
                         "10-60 s", "1-10 min",  "> 10 min"};
  std::size_t bins[7] = {};
  for (const auto& r : report.records) {
    if (!granted(r)) continue;
    int bin = 6;
    for (int i = 1; i < 7; ++i) {
      if (r.queue_time < edges[i]) {
        bin = i - 1;
        break;
      }
    }
    ++bins[bin];
  }
  const std::size_t tallest = std::max<std::size_t>(1, *std::max_element(bins, bins + 7));
  out += "<h2>Queue time</h2>\n<svg class=\"histogram\" width=\"640\" height=\"200\">";
  for (int i = 0; i < 7; ++i) {
    const double height = 150.0 * static_cast<double>(bins[i]) / static_cast<double>(tallest);
    const double x = 10 + i * 90.0;
    out += "<rect x=\"" + num(x) + "\" y=\"" + num(165 - height) + "\" width=\"80\" height=\"" +
           num(height) + "\" fill=\"#1a73e8\"><title>" + names[i] + ": " + std::to_string(bins[i]) +
           "</title></rect><text x=\"" + num(x + 40) + "\" y=\"" + num(160 - height) +
           "\" text-anchor=\"middle\" font-size=\"12\">" + std::to_string(bins[i]) +
           "</text><text x=\"" + num(x + 40) +
           "\" y=\"182\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555\">" + names[i] +
           "</text>";
  }
  out += "</svg>\n";

  out +=
      "<h2>Per device</h2>\n<table><tr><th>device</th><th>allocations</th><th>held</th>"
      "<th>mean hold</th><th>utilization</th><th>queue median</th><th>queue p95</th>"
      "<th>queue max</th><th>lost</th><th>timeouts</th></tr>\n";
  for (const auto* d : devices) {
    out += "<tr><td>" + escape(d->resource_id) + "</td><td>" + std::to_string(d->allocations) +
           "</td><td>" + duration(d->total_hold) + "</td><td>" + duration(d->mean_hold) +
           "</td><td>" + num(d->utilization * 100) + "%</td><td>" + duration(d->queue_time.median) +
           "</td><td>" + duration(d->queue_time.p95) + "</td><td>" + duration(d->queue_time.max) +
           "</td><td>" + std::to_string(d->losses) + "</td><td>" + std::to_string(d->timeouts) +
           "</td></tr>\n";
  }
  out += "</table>\n";

  const auto table = [&](const char* title, const char* first,
                         const std::vector<GroupFigures>& groups) {
    out += std::string("<h2>") + title + "</h2>\n<table><tr><th>" + first +
           "</th><th>requests</th><th>waited</th><th>queue median</th><th>queue p95</th>"
           "<th>queue max</th><th>timeouts</th><th>lost</th><th>devices</th></tr>\n";
    for (const auto& g : groups) {
      std::string ids;
      for (const auto& id : g.devices) ids += (ids.empty() ? "" : ", ") + id;
      out += "<tr><td>" + escape(g.name.empty() ? "(none)" : g.name) + "</td><td>" +
             std::to_string(g.requests) + "</td><td>" + std::to_string(g.waited) + "</td><td>" +
             duration(g.queue_time.median) + "</td><td>" + duration(g.queue_time.p95) +
             "</td><td>" + duration(g.queue_time.max) + "</td><td>" + std::to_string(g.timeouts) +
             "</td><td>" + std::to_string(g.losses) + "</td><td>" + escape(ids) + "</td></tr>\n";
    }
    out += "</table>\n";
  };
  table("Per suite or command", "suite / command", report.suites);
  table("Per requirement", "requirements", report.requirements);
  out += "</body></html>\n";
  return out;
}

}  // namespace lockable::metrics
