// The test binary's main. doctest runs single-threaded, so the lab may be started lazily by the
// first test that needs it (see fixture.cpp); ctest runs each test case in its own process.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>

namespace fl::test {
int fake_app_main(const char* lesson);  // test_containment.cpp
}

int main(int argc, char** argv) {
    // The containment tests start this binary as an app of their own (see test_containment.cpp).
    if (argc == 3 && std::strcmp(argv[1], "--fake-app") == 0) return fl::test::fake_app_main(argv[2]);
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
