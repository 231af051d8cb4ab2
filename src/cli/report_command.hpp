#pragma once

#include "command_line.hpp"

namespace lockable::cli {

/// `lockable report`: reads the files, prints the figures on stdout (and writes --html), lists
/// every input problem on stderr. Returns the exit status (0, 1 with problems, 2 usage).
int run_report(const CommandLine& line);

}  // namespace lockable::cli
