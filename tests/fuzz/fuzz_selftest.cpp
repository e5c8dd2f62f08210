// The negative control for the fuzz tests (run.sh selftest): each input in tests/fuzz/selftest
// does one thing the smoke runs must catch. If one of them passed, so could a real bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto is = [&](const char* what) { return size == strlen(what) && memcmp(data, what, size) == 0; };
    if (is("undefined")) {
        volatile double big = 1e30;
        return int(big);  // outside int's range: UBSan
    }
    if (is("leak")) {
        void* volatile p = malloc(64);
        p = nullptr;  // LeakSanitizer at exit
    }
    // Unsigned: it wraps without UB, so only libFuzzer's timeout can end it. (A signed counter
    // overflowed after 2^31 turns, about 5 s here: UBSan caught the "hang", not the timeout,
    // and when both fired at once under load the run deadlocked until ctest killed it.)
    if (is("hang"))
        for (volatile unsigned i = 0;; i = i + 1) {
        }
    if (is("memory")) {
        char* volatile p = static_cast<char*>(malloc(size_t(1) << 30));  // past -rss_limit_mb
        if (p) p[0] = 1;
        free(p);
    }
    return 0;
}
