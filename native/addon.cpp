// Module entry: llama.cpp's global set-up, its logging, and the exported functions and classes.
#include "addon.h"

#include <atomic>
#include <cstdio>

#include "ggml-backend.h"

namespace cllm {

static std::atomic<bool> verbose{false};
static thread_local std::string errorsOnThisThread;

void clearThreadErrors() { errorsOnThisThread.clear(); }
std::string threadErrors() { return errorsOnThisThread; }

// llama.cpp logs to stderr by default; a CLI that writes to pipes must stay silent unless asked.
static void onLog(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR && text) {
        std::string line(text);
        while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) errorsOnThisThread += (errorsOnThisThread.empty() ? "" : "\n") + line;
    }
    if (verbose.load(std::memory_order_relaxed)) {
        fputs(text, stderr);
        fflush(stderr);
    }
}

static Napi::Value SetVerbose(const Napi::CallbackInfo & info) {
    verbose = info[0].ToBoolean().Value();
    return info.Env().Undefined();
}

static Napi::Value BuildInfo(const Napi::CallbackInfo & info) {
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("llamaCppCommit", CLLM_LLAMA_CPP_COMMIT);
    out.Set("backend", CLLM_BACKEND);
    Napi::Array devices = Napi::Array::New(info.Env());
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        Napi::Object d = Napi::Object::New(info.Env());
        d.Set("name", ggml_backend_dev_name(dev));
        d.Set("description", ggml_backend_dev_description(dev));
        d.Set("gpu", ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU);
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        d.Set("memoryFree", static_cast<double>(free));
        d.Set("memoryTotal", static_cast<double>(total));
        devices.Set(static_cast<uint32_t>(devices.Length()), d);
    }
    out.Set("devices", devices);
#ifdef CLLM_EXACT_KERNELS
    out.Set("exactKernels", true);
#else
    out.Set("exactKernels", false);
#endif
    out.Set("exactCacheType", exactKeepsDefaultCache() ? "f16" : "f32");
    return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    llama_log_set(onLog, nullptr);
    llama_backend_init();

    auto * data = new AddonData();
    Napi::Function model = Model::Define(env);
    Napi::Function context = Context::Define(env);
    data->modelConstructor = Napi::Persistent(model);
    data->contextConstructor = Napi::Persistent(context);
    env.SetInstanceData(data);

    exports.Set("Model", model);
    exports.Set("Context", context);
    exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
    exports.Set("sampleToken", Napi::Function::New(env, SampleToken, "sampleToken"));
    exports.Set("setVerbose", Napi::Function::New(env, SetVerbose, "setVerbose"));
    exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
    exportGuard(env, exports);
    return exports;
}

}  // namespace cllm

static Napi::Object InitCllm(Napi::Env env, Napi::Object exports) { return cllm::Init(env, exports); }
NODE_API_MODULE(cllm, InitCllm)
