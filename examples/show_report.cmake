# cmake -DREPORT=<report.xml> -P show_report.cmake: prints the lockable_* properties of each suite
# of a GoogleTest XML report (attribute form of GoogleTest <= 1.15, <property> form of 1.16+) and
# of each test (<property> elements of <testcase>, where CI servers show them).
if(NOT EXISTS "${REPORT}")
  message(FATAL_ERROR "no report at ${REPORT}")
endif()
file(READ "${REPORT}" xml)
# ';' separates CMake list items; hide it (it only occurs in entities such as &quot;).
string(REPLACE ";" "@semicolon@" xml "${xml}")

function(decode text out)
  string(REPLACE "&quot@semicolon@" "\"" text "${text}")
  string(REPLACE "&apos@semicolon@" "'" text "${text}")
  string(REPLACE "&lt@semicolon@" "<" text "${text}")
  string(REPLACE "&gt@semicolon@" ">" text "${text}")
  string(REPLACE "&#x0A@semicolon@" " " text "${text}")
  string(REPLACE "&amp@semicolon@" "&" text "${text}")
  string(REPLACE "@semicolon@" "\\;" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

string(REGEX MATCHALL "<testsuites? [^>]*>|<testcase [^>]*>|<property name=\"lockable_[^>]*>"
       tags "${xml}")
message("lockable properties in ${REPORT} (attributes of <testsuite>/<testsuites>, <property> "
        "children of <testcase>; of all three with GoogleTest 1.16+):")
set(indent "      ")
foreach(tag IN LISTS tags)
  if(tag MATCHES "^<(testsuites?) ")
    set(element "${CMAKE_MATCH_1}")
    string(REGEX MATCH " name=\"[^\"]*\"" name "${tag}")
    message("  <${element}${name}>")
    set(indent "      ")
    string(REGEX MATCHALL "lockable_[a-z_0-9]+=\"[^\"]*\"" properties "${tag}")
  elseif(tag MATCHES "^<testcase ")
    string(REGEX MATCH " name=\"[^\"]*\"" name "${tag}")
    message("    <testcase${name}>")
    set(indent "          ")
    set(properties "")
  else()
    string(REGEX REPLACE "<property name=\"([^\"]*)\" value=(\"[^\"]*\").*" "\\1=\\2" properties
                         "${tag}")
  endif()
  foreach(property IN LISTS properties)
    string(REGEX REPLACE "^([^=]*)=\"(.*)\"$" "\\1 = \\2" property "${property}")
    decode("${property}" property)
    message("${indent}${property}")
  endforeach()
endforeach()
