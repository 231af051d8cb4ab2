#pragma once

// `lockable reserve | drain | unreserve | release --force`: an operator's actions on one device,
// and the detached reservation holder process that keeps the Python package off a reserved
// device in a lock folder.

#include "command_line.hpp"

#include <string>

namespace lockable::cli {

/// Where the action goes, resolved from flags and LOCKABLE_* variables by main.
struct AdminSettings {
  /// The lock store spec (make_lock_backend; "" the default lock folder).
  std::string lock_spec;
  std::string resources;
  /// The allocation log; empty: none.
  std::string metrics_file;
};

/// Runs `line.admin` and returns the exit status; throws the library's errors (main maps them).
int run_admin_command(const CommandLine& line, const AdminSettings& settings);

/// The hidden word that starts a reservation holder (`lockable <word> FOLDER ID READY_FD`).
constexpr const char* kReservationHolderWord = "__reservation-holder";

/// The reservation holder process's main: holds `<folder>/<id>.pid` while `<id>.reserved.json`
/// names its token, releases and exits when the reservation is removed, replaced or over (then
/// it removes the file). Writes "held\n" or "waiting <holder>\n" to READY_FD once.
int run_reservation_holder(int argc, const char* const* argv);

/// Starts a holder for every standing reservation in the lock folder `spec` names that has none
/// (after a reboot). Best effort, never throws; does nothing for other stores.
void restart_reservation_holders(const std::string& spec);

}  // namespace lockable::cli
