// What stands between a damaged model file and a crash: ggml's aborts, fatal signals and C++ terminate end
// as one line on stderr and exit code 1; and the interrupt flag that Ctrl-C sets, which llama.cpp checks
// during a model load and inside every forward pass.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "addon.h"

namespace cllm {

static std::atomic<bool> interrupted{false};

bool interruptRequested() { return interrupted.load(std::memory_order_relaxed); }

static Napi::Value SetInterrupted(const Napi::CallbackInfo & info) {
    interrupted = info[0].ToBoolean().Value();
    return info.Env().Undefined();
}

static void writeAll(const char * text) {
    size_t left = std::strlen(text);
    while (left > 0) {
        ssize_t n = write(STDERR_FILENO, text, left);
        if (n <= 0) return;
        text += n;
        left -= n;
    }
}

// ggml's message reads "file:line: what went wrong"; the user needs only what went wrong.
static void onGgmlAbort(const char * message) {
    const char * colon = std::strstr(message, ": ");
    std::string line = std::string("cllm: llama.cpp cannot go on: ") + (colon ? colon + 2 : message);
    for (char & c : line) if (c == '\n') c = ' ';
    writeAll((line + " (the model file may be damaged)\n").c_str());
    _exit(1);
}

// Only async-signal-safe calls here: write, pause and _exit. Several threads of a pass may fault at once (a
// truncated file under every one of them): the first one speaks and ends the process, the others wait for it.
static std::atomic<bool> crashing{false};

static void onFatalSignal(int signal) {
    if (crashing.exchange(true)) {
        for (;;) pause();
    }
    switch (signal) {
        case SIGBUS:
            writeAll("\ncllm: the model file changed or was truncated while in use (copy it first, or pass --no-mmap)\n");
            break;
        case SIGSEGV:
            writeAll("\ncllm: llama.cpp crashed (segmentation fault): the model file may be damaged\n");
            break;
        case SIGFPE:
            writeAll("\ncllm: llama.cpp crashed (arithmetic error): the model file may be damaged\n");
            break;
        default:
            writeAll("\ncllm: llama.cpp aborted: the model file may be damaged\n");
            break;
    }
    _exit(1);
}

static void onTerminate() {
    std::string line = "cllm: llama.cpp failed";
    if (std::exception_ptr current = std::current_exception()) {
        try {
            std::rethrow_exception(current);
        } catch (const std::exception & e) {
            line += std::string(": ") + e.what();
        } catch (...) {
        }
    }
    for (char & c : line) if (c == '\n') c = ' ';
    writeAll((line + "\n").c_str());
    _exit(1);
}

// For the command line only, not for a library user's process. The handlers run on their own stack, so
// that a stack overflow (a deeply nested input) is caught too.
static Napi::Value InstallCrashGuard(const Napi::CallbackInfo & info) {
    static bool installed = false;
    if (installed) return info.Env().Undefined();
    installed = true;
    ggml_set_abort_callback(onGgmlAbort);
    std::set_terminate(onTerminate);
    static std::vector<char> altStack(std::max<size_t>(SIGSTKSZ, 64 * 1024));
    stack_t stack{};
    stack.ss_sp = altStack.data();
    stack.ss_size = altStack.size();
    sigaltstack(&stack, nullptr);
    struct sigaction action{};
    action.sa_handler = onFatalSignal;
    action.sa_flags = SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(signal, &action, nullptr);
    return info.Env().Undefined();
}

void exportGuard(Napi::Env env, Napi::Object exports) {
    exports.Set("installCrashGuard", Napi::Function::New(env, InstallCrashGuard, "installCrashGuard"));
    exports.Set("setInterrupted", Napi::Function::New(env, SetInterrupted, "setInterrupted"));
}

}  // namespace cllm
