// Locks a device through the installed/added library and prints it: proves the package links.
#include <lockable/lockable.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: consumer_app RESOURCES_JSON LOCK_FOLDER\n";
    return 2;
  }
  try {
    lockable::Options options;
    options.resources = std::filesystem::path(argv[1]);
    options.lock_folder = argv[2];
    options.hostname = "localhost";
    lockable::Lockable lockable(std::move(options));
    auto allocation = lockable.lock("os=Android&version=14", lockable::Seconds(10));
    std::cout << "locked " << allocation.resource_id() << " version "
              << allocation.attributes().at("version").get<std::string>() << "\n";
    return allocation.resource_id() == "pixel-7-01" ? 0 : 1;
  } catch (const lockable::Error& error) {
    std::cerr << "consumer_app: " << error.what() << "\n";
    return 1;
  }
}
