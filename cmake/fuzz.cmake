# libFuzzer smoke tests (tests/fuzz): registered only when a clang that can build
# -fsanitize=fuzzer is found. The targets get a clang build of their own in build/fuzz, made by
# the ctest test fuzz_build (so `./forklab.sh` alone never waits for it); see tests/fuzz/run.sh.
set(FORKLAB_FUZZ AUTO CACHE STRING "libFuzzer smoke tests: ON, OFF, or AUTO (ON when clang can build -fsanitize=fuzzer)")
set(FORKLAB_FUZZ_SECONDS 20 CACHE STRING "seconds each fuzz target runs in the test suite")
find_program(FORKLAB_FUZZ_CXX NAMES clang++ clang++-16 clang++-15 clang++-14
             DOC "clang++ for the libFuzzer targets")

set(forklab_fuzz_ok OFF)
if(FORKLAB_FUZZ_CXX AND NOT FORKLAB_FUZZ STREQUAL "OFF")
  if(NOT FORKLAB_FUZZ_PROBED STREQUAL FORKLAB_FUZZ_CXX)
    set(dir ${CMAKE_BINARY_DIR}/fuzz_probe)
    file(WRITE ${dir}/probe.cpp
         "extern \"C\" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n")
    execute_process(COMMAND ${FORKLAB_FUZZ_CXX} -fsanitize=fuzzer,address,undefined probe.cpp -o probe
                    WORKING_DIRECTORY ${dir} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(FORKLAB_FUZZ_WORKS ON CACHE INTERNAL "")
    else()
      set(FORKLAB_FUZZ_WORKS OFF CACHE INTERNAL "")
    endif()
    set(FORKLAB_FUZZ_PROBED ${FORKLAB_FUZZ_CXX} CACHE INTERNAL "")
  endif()
  set(forklab_fuzz_ok ${FORKLAB_FUZZ_WORKS})
endif()
if(FORKLAB_FUZZ STREQUAL "ON" AND NOT forklab_fuzz_ok)
  message(FATAL_ERROR "FORKLAB_FUZZ=ON but no clang++ here can build -fsanitize=fuzzer "
                      "(install clang-14 and libclang-rt-14-dev)")
endif()

if(forklab_fuzz_ok)
  message(STATUS "Fuzz smoke tests: on, with ${FORKLAB_FUZZ_CXX}")
  set(FUZZ_RUN ${CMAKE_CURRENT_SOURCE_DIR}/tests/fuzz/run.sh)
  set(FUZZ_DIR ${CMAKE_BINARY_DIR}/fuzz)
  add_test(NAME fuzz_build COMMAND ${FUZZ_RUN} build ${FUZZ_DIR})
  set_tests_properties(fuzz_build PROPERTIES FIXTURES_SETUP forklab_fuzz TIMEOUT 900
    ENVIRONMENT "FORKLAB_FUZZ_CXX=${FORKLAB_FUZZ_CXX};FORKLAB_FUZZ_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}")
  # The negative control: inputs that crash, leak, hang and eat memory must each fail a run.
  add_test(NAME fuzz_selftest COMMAND ${FUZZ_RUN} selftest ${FUZZ_DIR})
  set_tests_properties(fuzz_selftest PROPERTIES FIXTURES_REQUIRED forklab_fuzz TIMEOUT 120)
  # targets.cmake lists the targets; here each line becomes a test fuzz_NAME.
  function(forklab_fuzz_target name)
    add_test(NAME fuzz_${name} COMMAND ${FUZZ_RUN} run ${FUZZ_DIR} ${name} ${FORKLAB_FUZZ_SECONDS})
    math(EXPR limit "${FORKLAB_FUZZ_SECONDS} + 120")
    set_tests_properties(fuzz_${name} PROPERTIES FIXTURES_REQUIRED forklab_fuzz
      SKIP_RETURN_CODE 77 TIMEOUT ${limit})
  endfunction()
  set(ROOT ${CMAKE_CURRENT_SOURCE_DIR})
  include(${CMAKE_CURRENT_SOURCE_DIR}/tests/fuzz/targets.cmake)
else()
  message(STATUS "Fuzz smoke tests: off (no clang++ that builds -fsanitize=fuzzer; FORKLAB_FUZZ=${FORKLAB_FUZZ})")
endif()
