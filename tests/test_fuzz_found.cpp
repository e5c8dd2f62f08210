// What the fuzz targets (tests/fuzz) found, kept as plain tests: each input crashed, hung or
// misbehaved once. The seeds that found them are in tests/fuzz/<target>/regress-*.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/event.hpp"
#include "core/lab.hpp"
#include "tests/fixture.hpp"

using namespace fl;

TEST_CASE("fuzz: a float in a trace's integer field is refused by name, not cast") {
    // 1.3e21 does not fit a uint64_t: the cast was undefined behaviour (UBSan).
    auto j = nlohmann::json::parse(R"({"kind":"start","pid":1,"seq":1,"t_ns":1.33722e21})");
    CHECK_THROWS_WITH(event_from_json(j), doctest::Contains("field \"t_ns\" should be a whole number"));
    j = nlohmann::json::parse(R"({"kind":"call","pid":1e30,"seq":1,"t_ns":1})");
    CHECK_THROWS_WITH(event_from_json(j), doctest::Contains("field \"pid\""));
}

TEST_CASE("fuzz: the lab reads a command of the wrong shape as an error, in plain words") {
    LabCommand c;
    auto err = [&](const char* text) { return parse_command(nlohmann::json::parse(text), c); };
    CHECK(err(R"({"cmd":"stop"})") == "");
    CHECK(err(R"({"cmd":"delay","ms":250})") == "");
    CHECK(c.ms == 250);
    CHECK(err(R"({"cmd":5})") == "field \"cmd\": expected a string");
    CHECK(err(R"({"cmd":"delay","ms":1e30})") == "field \"ms\": expected a whole number");
    CHECK(err(R"({"cmd":"delay","ms":4294967296})") == "field \"ms\": expected a whole number");
    CHECK(err(R"({"cmd":"start","lesson":"hello","replay":[1]})").find("\"replay\"") != std::string::npos);
    CHECK(err(R"({"cmd":"start","lesson":"hello","knobs":[]})").find("\"knobs\"") != std::string::npos);
    CHECK(err(R"({"cmd":"mode","gated":"yes"})") == "field \"gated\": expected true or false");
    CHECK(err("[1]").find("JSON object") != std::string::npos);
    CHECK(err(R"({"cmd":"dance"})").find("unknown command \"dance\"") != std::string::npos);
    // A start read back from what the client sends is the same start.
    RunOptions o;
    o.lesson = "pipes";
    o.knobs["keep_write_end"] = "true";
    o.replay = {"1", "1.1"};
    o.delay_ms = 40;
    REQUIRE(parse_command(to_json(o), c) == "");
    CHECK(c.cmd == "start");
    CHECK(c.start.knobs == o.knobs);
    CHECK(c.start.replay == o.replay);
    CHECK(c.start.delay_ms == 40);
}

TEST_CASE("fuzz: a live lab answers a malformed command with an error and carries on") {
    // {"cmd":5} made the lab throw from nlohmann::json::value and die (std::terminate).
    LabClient& lab = test::lab();
    pid_t pid = lab.pid();
    REQUIRE(lab.send(nlohmann::json{{"cmd", 5}}));
    std::optional<nlohmann::json> m;
    for (int i = 0; i < 50 && !(m = lab.recv(100)); ++i) {
    }
    REQUIRE(m);
    CHECK(m->value("msg", "") == "error");
    CHECK(m->value("text", "").find("field \"cmd\": expected a string") != std::string::npos);
    REQUIRE(lab.send(nlohmann::json{{"cmd", "delay"}, {"ms", 1e30}}));
    for (int i = 0; i < 50 && !(m = lab.recv(100)); ++i) {
    }
    REQUIRE(m);
    CHECK(m->value("text", "").find("\"ms\"") != std::string::npos);
    CHECK_FALSE(lab.lab_gone());
    CHECK(lab.pid() == pid);
}
