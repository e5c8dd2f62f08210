// The test binary's main. doctest runs single-threaded, so the lab may be started lazily by the
// first test that needs it (see fixture.cpp); ctest runs each test case in its own process.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

int main(int argc, char** argv) {
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
