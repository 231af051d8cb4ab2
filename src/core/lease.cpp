#include "core/lease.hpp"

#include <algorithm>

namespace lockable::detail {

using std::chrono::milliseconds;

LeaseClock::time_point lease_end(LeaseClock::time_point renewal_sent, milliseconds lease) {
  return renewal_sent + lease;
}

bool lease_lapsed(LeaseClock::time_point renewal_sent, milliseconds lease,
                  LeaseClock::time_point now) {
  return now >= lease_end(renewal_sent, lease);
}

milliseconds heartbeat_period(milliseconds requested, milliseconds lease) {
  const milliseconds wanted = requested.count() > 0 ? requested : lease / 3;
  return std::max(milliseconds(10), std::min(wanted, lease / 2));
}

LeaseClock::time_point next_heartbeat(LeaseClock::time_point renewal_sent,
                                      LeaseClock::time_point last_attempt_end, int failures,
                                      milliseconds period, milliseconds lease) {
  if (failures <= 0) return renewal_sent + period;
  const auto retry = last_attempt_end + std::max(milliseconds(10), period / 4);
  const auto last_chance = lease_end(renewal_sent, lease) - lease / 10;
  return std::max(last_attempt_end, std::min(retry, last_chance));
}

LeaseClock::time_point heartbeat_deadline(LeaseClock::time_point renewal_sent,
                                          LeaseClock::time_point now, milliseconds period,
                                          milliseconds lease) {
  return std::min(lease_end(renewal_sent, lease), now + period);
}

}  // namespace lockable::detail
