// Sanitizer builds only (FORKLAB_SANITIZE): shared objects are never unloaded.
//
// At exit the GL stack (libglvnd, Mesa's driver) dlcloses what it loaded. LeakSanitizer runs
// after that, so whatever those modules' globals still pointed to looked unreachable: a "leak"
// from an "<unknown module>", with no way to tell it from ours. A dlclose that keeps the module
// mapped lets LeakSanitizer see those pointers, and name the module of any real leak left. Our
// own leaks are still reported: FORKLAB_SANITIZE_SELFTEST_LEAK below makes one, and a test
// checks that the app then fails.
#include <cstdlib>
#include <cstring>

extern "C" int dlclose(void* handle) {
    (void)handle;
    return 0;
}

namespace {
// A leak on purpose, for the negative control (tests/test_app_xvfb.cpp).
struct SelftestLeak {
    SelftestLeak() {
        if (const char* v = std::getenv("FORKLAB_SANITIZE_SELFTEST_LEAK"); v && *v == '1') {
            static char* volatile kept;
            kept = static_cast<char*>(std::malloc(4096));
            std::memset(kept, 1, 4096);
            kept = nullptr;  // the only pointer is gone: a leak
        }
    }
} selftest_leak;
}  // namespace
