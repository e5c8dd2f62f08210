// ctest finds the test cases by listing their names (doctest_discover_tests reads them as a CMake
// list): a ';' in a name splits it into two ctest tests, each filtering for a name no case has,
// so both pass having run nothing. Eleven cases went unrun that way.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

TEST_CASE("test names: every test case is one ctest test (no semicolon in its name)") {
    // This binary, listing its own cases (popen's shell would read /proc/self/exe as itself).
    std::string self = std::filesystem::read_symlink("/proc/self/exe");
    FILE* p = popen(("'" + self + "' --list-test-cases --no-version 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    CHECK(pclose(p) == 0);
    // The names stand between two lines of '='; a count of them follows.
    std::vector<std::string> names;
    int rules = 0, listed = -1;
    size_t at = 0;
    while (at < out.size()) {
        size_t end = out.find('\n', at);
        if (end == std::string::npos) end = out.size();
        std::string line = out.substr(at, end - at);
        at = end + 1;
        const std::string count = "[doctest] unskipped test cases passing the current filters: ";
        if (line.rfind("=====", 0) == 0) ++rules;
        else if (line.rfind(count, 0) == 0) listed = std::stoi(line.substr(count.size()));
        else if (rules == 1) names.push_back(line);
    }
    REQUIRE_MESSAGE(listed > 0, out);
    CHECK_MESSAGE(int(names.size()) == listed, out);
    for (const std::string& name : names) CHECK_MESSAGE(name.find(';') == std::string::npos, name);
}
