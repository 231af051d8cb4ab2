#include "status_report.hpp"

#include "core/queue_order.hpp"

#include <algorithm>

namespace lockable::cli {
namespace {

std::string padded(const std::string& text, std::size_t width) {
  return text + std::string(width > text.size() ? width - text.size() : 0, ' ');
}

std::string compact(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Seconds since `since`; 0 for an unknown time (the epoch) or one in the future.
double seconds_since(std::chrono::system_clock::time_point since,
                     std::chrono::system_clock::time_point now) {
  if (since == std::chrono::system_clock::time_point{} || now <= since) return 0.0;
  return std::chrono::duration<double>(now - since).count();
}

std::string seconds_text(double seconds) {
  return format_seconds(std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::duration<double>(seconds))) +
         " s";
}

std::string who(const HolderInfo& info) {
  std::string text = info.pid > 0 ? "pid " + std::to_string(info.pid) : "unknown process";
  if (!info.hostname.empty()) text += " on " + info.hostname;
  return text;
}

std::string ids_text(const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) text += (text.empty() ? "" : ", ") + id;
  return text.empty() ? "nothing" : text;
}

// The details column of one device.
std::string device_details(const DeviceStatus& device, const StatusReport& report) {
  const auto now = report.time;
  std::string text;
  switch (device.state) {
    case DeviceStatus::State::kHeld:
      if (device.holder) {
        const auto& holder = *device.holder;
        text = "by " + who(holder);
        if (holder.since != std::chrono::system_clock::time_point{}) {
          text += " since " + format_iso8601(holder.since) + " (" +
                  seconds_text(seconds_since(holder.since, now)) + ")";
        }
        if (holder.requirements.is_object() && !holder.requirements.empty()) {
          text += ", for " + compact(holder.requirements);
        }
        if (!holder.alloc_id.empty()) text += ", allocation " + holder.alloc_id;
        if (holder.fencing_token) {
          text += ", fencing token " + std::to_string(*holder.fencing_token);
        }
      }
      break;
    case DeviceStatus::State::kReserved:
      if (device.reservation) text = device.reservation->describe();
      if (device.holder && device.reservation && device.reservation->draining) {
        text += "; held until released by " + who(*device.holder);
      }
      break;
    case DeviceStatus::State::kFree:
    case DeviceStatus::State::kOffline:
      break;
  }
  if (!device.lost.empty()) {
    if (!text.empty()) text += "; ";
    text += "LOST, may still be in use by " + device.lost;
  }
  if (!device.for_this_host) {
    if (!text.empty()) text += "; ";
    text += "not for this host (" + report.this_host + "): " +
            (device.hostname.empty() ? std::string("names no hostname")
                                     : "only lockable on " + device.hostname);
  }
  return text;
}

}  // namespace

bool for_this_host(const Resource& resource, const std::string& this_host) {
  return resource.hostname() == this_host;
}

std::string device_state_name(DeviceStatus::State state) {
  switch (state) {
    case DeviceStatus::State::kFree:
      return "free";
    case DeviceStatus::State::kHeld:
      return "held";
    case DeviceStatus::State::kReserved:
      return "reserved";
    case DeviceStatus::State::kOffline:
      return "offline";
  }
  return "unknown";
}

StatusReport make_status_report(const std::vector<ResourceStatus>& statuses,
                                const std::vector<std::optional<Reservation>>& reservations,
                                const std::vector<QueuedRequest>& queued,
                                const std::string& this_host, const std::string& backend,
                                std::chrono::system_clock::time_point now,
                                std::chrono::system_clock::duration aging) {
  StatusReport report;
  report.time = now;
  report.this_host = this_host;
  report.backend = backend;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    const auto& status = statuses[i];
    DeviceStatus device;
    device.id = status.resource.id;
    device.hostname = status.resource.hostname();
    device.for_this_host = for_this_host(status.resource, this_host);
    device.lost = status.lost;
    switch (status.state) {
      case ResourceStatus::State::kFree:
        device.state = DeviceStatus::State::kFree;
        break;
      case ResourceStatus::State::kBusy:
        device.state = DeviceStatus::State::kHeld;
        device.holder = status.holder;
        break;
      case ResourceStatus::State::kOffline:
        device.state = DeviceStatus::State::kOffline;
        break;
    }
    // Out of service outranks held (the lock folder's reservation holder holds the device, a
    // draining holder keeps it until it releases) and offline (it says why, and for how long).
    if (i < reservations.size() && reservations[i]) {
      device.state = DeviceStatus::State::kReserved;
      device.reservation = reservations[i];
    }
    report.devices.push_back(std::move(device));
  }
  std::vector<QueuePlace> places;
  for (const auto& request : queued) {
    places.push_back(QueuePlace{request.waiter.priority, request.waiter.since});
  }
  for (const auto index : queue_order(places, now, aging)) {
    report.queue.push_back(
        QueuedStatus{queued[index], effective_priority(places[index], now, aging)});
  }
  return report;
}

std::string status_text(const StatusReport& report) {
  std::size_t id_width = 2;
  std::size_t host_width = 8;
  for (const auto& device : report.devices) {
    id_width = std::max(id_width, device.id.size());
    host_width = std::max(host_width, device.hostname.size());
  }
  id_width += 2;
  host_width += 2;
  std::string text = padded("ID", id_width) + padded("HOSTNAME", host_width) + "STATE    DETAILS\n";
  for (const auto& device : report.devices) {
    std::string line = padded(device.id, id_width) + padded(device.hostname, host_width) +
                       padded(device_state_name(device.state), 9) + device_details(device, report);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    text += line + "\n";
  }
  if (!report.reservations_unknown.empty()) {
    text += "reservations: unknown (" + report.reservations_unknown + ")\n";
  }
  text += report.queue.empty() ? "queue: empty\n"
                               : "queue, next served first (higher priority first, aged +1 per "
                                 "aging period of waiting):\n";
  for (std::size_t i = 0; i < report.queue.size(); ++i) {
    const auto& entry = report.queue[i];
    const auto& waiter = entry.request.waiter;
    std::string line =
        "  " + std::to_string(i + 1) + ". priority " + std::to_string(waiter.priority);
    if (entry.effective_priority != waiter.priority) {
      line += " (aged to " + std::to_string(entry.effective_priority) + ")";
    }
    line += ": " + who(waiter);
    if (waiter.since != std::chrono::system_clock::time_point{}) {
      line += ", waiting " + seconds_text(seconds_since(waiter.since, report.time)) + " since " +
              format_iso8601(waiter.since);
    }
    line += ", wants " + ids_text(entry.request.wanted);
    if (waiter.requirements.is_object() && !waiter.requirements.empty()) {
      line += ", for " + compact(waiter.requirements);
    }
    text += line + "\n";
  }
  for (const auto& problem : report.problems) text += "warning: " + problem + "\n";
  return text;
}

Json status_json(const StatusReport& report) {
  Json devices = Json::array();
  for (const auto& device : report.devices) {
    Json holder = nullptr;
    if (device.holder) {
      holder = device.holder->to_json();
      holder["held_for"] = seconds_since(device.holder->since, report.time);
    }
    Json reservation = nullptr;
    if (device.reservation) {
      reservation = device.reservation->to_json();
      if (!device.reservation->problem.empty())
        reservation["problem"] = device.reservation->problem;
    }
    devices.push_back({{"id", device.id},
                       {"hostname", device.hostname},
                       {"for_this_host", device.for_this_host},
                       {"state", device_state_name(device.state)},
                       {"holder", holder},
                       {"reservation", reservation},
                       {"lost", device.lost.empty() ? Json(nullptr) : Json(device.lost)}});
  }
  Json queue = Json::array();
  for (std::size_t i = 0; i < report.queue.size(); ++i) {
    const auto& entry = report.queue[i];
    const auto& waiter = entry.request.waiter;
    queue.push_back({{"position", i + 1},
                     {"pid", waiter.pid},
                     {"hostname", waiter.hostname},
                     {"since", format_iso8601(waiter.since)},
                     {"waited", seconds_since(waiter.since, report.time)},
                     {"priority", waiter.priority},
                     {"effective_priority", entry.effective_priority},
                     {"requirements", waiter.requirements},
                     {"wants", entry.request.wanted}});
  }
  return Json{{"schema", kStatusSchema},       {"time", format_iso8601(report.time)},
              {"hostname", report.this_host},  {"backend", report.backend},
              {"devices", std::move(devices)}, {"queue", std::move(queue)},
              {"problems", report.problems}};
}

}  // namespace lockable::cli
