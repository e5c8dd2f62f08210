# The fuzz targets, one line each: forklab_fuzz_target(NAME SOURCE [MORE SOURCES...]).
# Read twice: by tests/fuzz/CMakeLists.txt (builds fuzz_NAME with clang) and by the main build
# (cmake/fuzz.cmake registers the ctest test fuzz_NAME). Seeds: tests/fuzz/NAME/.
# NEEDS PKG: built only when pkg_check_modules found PKG (else the test says skipped).
# Adding one: write fuzz_NAME.cpp with LLVMFuzzerTestOneInput,
# add a line here, put a few small seeds in tests/fuzz/NAME/. Every core/*.cpp and cli/*.cpp is
# linked already (not core/scenario.cpp, see CMakeLists.txt); list other sources after the
# target's own, as settings does. A target must not fork, and must not leave files behind
# (write inputs under $TMPDIR, which run.sh makes and removes).
forklab_fuzz_target(trace fuzz_trace.cpp)
forklab_fuzz_target(lab_command fuzz_lab_command.cpp)
forklab_fuzz_target(settings fuzz_settings.cpp ${ROOT}/app/settings.cpp NEEDS IMGUI)  # imgui.h
forklab_fuzz_target(sandbox_script fuzz_sandbox_script.cpp)
