// forklab: the desktop app and the command-line runner, one binary.
//
// The very first thing main does, before any thread, window or GL context exists, is fork the
// lab: the single-threaded process that forks every lesson process (see core/lab.hpp). The GUI
// process itself never forks lessons: it holds an X11 socket and GL driver threads.
#include <memory>

#include "cli/commands.hpp"
#include "core/files.hpp"
#include "core/lab.hpp"
#ifdef FORKLAB_GUI
#include "app/window.hpp"
#endif
#include <cstdio>

int main(int argc, char** argv) {
    bool cli = fl::is_cli_command(argc, argv);
    std::unique_ptr<fl::LabClient> lab;
    if (!cli || fl::cli_needs_lab(argc, argv)) lab = fl::LabClient::start();
    if (cli) return fl::cli_main(argc, argv, lab.get());
#ifdef FORKLAB_GUI
    return fl::run_app(argc, argv, lab.get());
#else
    const std::string self = fl::forklab_command();
    std::fprintf(stderr, "forklab: built without the GUI; use `%s run LESSON` (see %s --help)\n",
                 self.c_str(), self.c_str());
    return 2;
#endif
}
