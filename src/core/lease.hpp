#pragma once
// When a lease kept alive by heartbeats is still ours, when the next heartbeat goes out, and how
// long one may take. Pure: times in, times out, so the decisions are tested without a server.

#include <chrono>

namespace lockable::detail {

using LeaseClock = std::chrono::steady_clock;

/// The earliest moment the store may let the lease lapse: the last grant or renewal that
/// succeeded was *sent* at `renewal_sent`, and the store renewed it no earlier than that. Past
/// this point nobody can say the lock is still ours, and someone else may be granted it.
LeaseClock::time_point lease_end(LeaseClock::time_point renewal_sent,
                                 std::chrono::milliseconds lease);

/// True when the lease must be considered lapsed at `now` (see lease_end).
bool lease_lapsed(LeaseClock::time_point renewal_sent, std::chrono::milliseconds lease,
                  LeaseClock::time_point now);

/// The heartbeat period used: `requested`, or a third of the lease when zero; never more than
/// half the lease (a beat that fails once must leave time for another) and at least 10 ms.
std::chrono::milliseconds heartbeat_period(std::chrono::milliseconds requested,
                                           std::chrono::milliseconds lease);

/// When the next heartbeat goes out. After a success (`failures` == 0): one period after the
/// renewal was sent. After failures in a row: sooner, every quarter period at most (so a short
/// outage costs little of the lease), but never later than a tenth of the lease before it ends.
LeaseClock::time_point next_heartbeat(LeaseClock::time_point renewal_sent,
                                      LeaseClock::time_point last_attempt_end, int failures,
                                      std::chrono::milliseconds period,
                                      std::chrono::milliseconds lease);

/// The deadline of one heartbeat request sent at `now`: no later than the lease end (an answer
/// after it cannot save the lock) and no longer than one period.
LeaseClock::time_point heartbeat_deadline(LeaseClock::time_point renewal_sent,
                                          LeaseClock::time_point now,
                                          std::chrono::milliseconds period,
                                          std::chrono::milliseconds lease);

}  // namespace lockable::detail
