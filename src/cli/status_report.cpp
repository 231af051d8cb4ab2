#include "status_report.hpp"

#include <algorithm>

namespace lockable::cli {
namespace {

std::string padded(const std::string& text, std::size_t width) {
  return text + std::string(width > text.size() ? width - text.size() : 0, ' ');
}

}  // namespace

std::string state_name(ResourceStatus::State state) {
  switch (state) {
    case ResourceStatus::State::kFree:
      return "free";
    case ResourceStatus::State::kBusy:
      return "busy";
    case ResourceStatus::State::kOffline:
      return "offline";
  }
  return "unknown";
}

bool for_this_host(const Resource& resource, const std::string& this_host) {
  return resource.hostname() == this_host;
}

std::string status_table(const std::vector<ResourceStatus>& statuses,
                         const std::string& this_host) {
  std::size_t id_width = 2;
  std::size_t host_width = 8;
  for (const auto& status : statuses) {
    id_width = std::max(id_width, status.resource.id.size());
    host_width = std::max(host_width, status.resource.hostname().size());
  }
  id_width += 2;
  host_width += 2;
  std::string text = padded("ID", id_width) + padded("HOSTNAME", host_width) + "STATE    HOLDER\n";
  for (const auto& status : statuses) {
    std::string line = padded(status.resource.id, id_width) +
                       padded(status.resource.hostname(), host_width) +
                       padded(state_name(status.state), 9);
    if (status.holder) line += status.holder->describe();
    if (!for_this_host(status.resource, this_host)) {
      if (status.holder) line += "; ";
      const std::string host = status.resource.hostname();
      line += "not for this host (" + this_host + "): " +
              (host.empty() ? std::string("names no hostname") : "only lockable on " + host);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    text += line + "\n";
  }
  return text;
}

Json status_json(const std::vector<ResourceStatus>& statuses, const std::string& this_host) {
  Json list = Json::array();
  for (const auto& status : statuses) {
    list.push_back({{"id", status.resource.id},
                    {"hostname", status.resource.hostname()},
                    {"state", state_name(status.state)},
                    {"holder", status.holder ? status.holder->to_json() : Json(nullptr)},
                    {"for_this_host", for_this_host(status.resource, this_host)}});
  }
  return list;
}

std::string queue_lines(const std::vector<QueuedRequest>& queued) {
  if (queued.empty()) return {};
  std::string text = "queue, oldest first:\n";
  for (std::size_t i = 0; i < queued.size(); ++i) {
    std::string ids;
    for (const auto& id : queued[i].wanted) ids += (ids.empty() ? "" : ", ") + id;
    text += "  " + std::to_string(i + 1) + ". " + queued[i].waiter.describe() + ", wants " +
            (ids.empty() ? std::string("nothing") : ids) + "\n";
  }
  return text;
}

std::string reservation_lines(const std::vector<ResourceStatus>& statuses, LockBackend& store) {
  std::vector<std::string> ids;
  for (const auto& status : statuses) ids.push_back(status.resource.id);
  std::vector<std::optional<Reservation>> reservations;
  try {
    reservations = store.reservations_of(ids);
  } catch (const std::exception& error) {
    return std::string("reservations: unknown (") + error.what() + ")\n";
  }
  std::string text;
  for (std::size_t i = 0; i < ids.size() && i < reservations.size(); ++i) {
    if (!reservations[i]) continue;
    if (text.empty()) text = "reserved:\n";
    text += "  " + ids[i] + ": " + reservations[i]->describe() + "\n";
  }
  return text;
}

}  // namespace lockable::cli
