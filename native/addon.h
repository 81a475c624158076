// Shared declarations of the cllm addon: a Model and a Context class over llama.cpp.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llama.h"
#include "sampler.h"

namespace cllm {

// Per-addon-instance state: the constructors needed to create JS objects from C++.
struct AddonData {
    Napi::FunctionReference modelConstructor;
    Napi::FunctionReference contextConstructor;
};

// Error-level messages llama.cpp logged on this thread since the last call, so that a failed load can say why.
void clearThreadErrors();
std::string threadErrors();

// Set by Ctrl-C: a model load stops at its next progress report, a forward pass inside its graph.
bool interruptRequested();

// Whether exact contexts keep llama.cpp's default KV cache (F16, flash attention) rather than F32 without it.
bool exactKeepsDefaultCache();
void exportGuard(Napi::Env env, Napi::Object exports);

class Model : public Napi::ObjectWrap<Model> {
  public:
    static Napi::Function Define(Napi::Env env);
    explicit Model(const Napi::CallbackInfo & info);
    ~Model() override;

    llama_model * get() const { return model_; }
    bool isLive() const { return model_ && !disposeRequested_; }
    const llama_vocab * vocab() const { return vocab_; }
    void retain() { ++liveContexts_; }
    void release();

  private:
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value Tokenize(const Napi::CallbackInfo & info);
    Napi::Value Detokenize(const Napi::CallbackInfo & info);
    Napi::Value TokenBytes(const Napi::CallbackInfo & info);
    Napi::Value IsEog(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    llama_model * live(Napi::Env env) const;
    void free();

    llama_model * model_ = nullptr;
    bool disposeRequested_ = false;
    const llama_vocab * vocab_ = nullptr;
    int liveContexts_ = 0;
};

// Decodes run on one thread per context, not on libuv's pool: ggml's OpenMP workers belong to the thread
// that calls llama_decode, and a pool of callers would each keep a team of spinning workers.
class Context : public Napi::ObjectWrap<Context> {
  public:
    static Napi::Function Define(Napi::Env env);
    explicit Context(const Napi::CallbackInfo & info);
    ~Context() override;

  private:
    enum class Outputs { Chosen, Margins, LogProbs, None };
    struct Job {
        std::vector<llama_token> tokens;
        llama_pos start = 0;
        std::vector<llama_pos> positions;  // per node: start + its depth in the tree (start + i in a chain)
        SamplingParams sampling;
        Outputs outputs = Outputs::Chosen;
        std::vector<int32_t> parents;  // a draft tree: parents[i] < i, -1 for the root; empty for a chain
        std::vector<uint64_t> sequences;  // per tree node, the sequences it belongs to (bits)
        int32_t sequenceCount = 0;
        int32_t topK = 0;
        std::vector<llama_token> chosen;
        std::vector<float> margins;
        std::vector<llama_token> targets;  // LogProbs: the token whose log-probability each position reports
        std::vector<float> logprobs;
        std::vector<llama_token> topk;  // topK candidates per position, best first
        double decodeMs = 0;            // time inside llama_decode, to tell the host's overhead from the model's
        std::string error;
    };

    Napi::Value Decode(const Napi::CallbackInfo & info);
    Napi::Value DecodeNow(const Napi::CallbackInfo & info);
    void prepare(const Napi::CallbackInfo & info);
    Napi::Object result(Napi::Env env) const;
    Napi::Value Rollback(const Napi::CallbackInfo & info);
    Napi::Value SetThreads(const Napi::CallbackInfo & info);
    Napi::Value Size(const Napi::CallbackInfo & info);
    Napi::Value CachedTokens(const Napi::CallbackInfo & info);
    Napi::Value GraphsReused(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    llama_context * live(Napi::Env env) const;
    void workerLoop();
    void run(Job & job);
    void fillTreeBatch(const Job & job);
    void recentTokens(const Job & job, int32_t node, std::vector<llama_token> & out) const;
    void finish(Napi::Env env);
    void free();

    llama_context * ctx_ = nullptr;
    ggml_threadpool * threadpool_ = nullptr;
    llama_batch batch_{};
    int32_t nBatch_ = 0;
    bool treeInCache_ = false;  // branch cells of the last tree are still cached until the next rollback
    std::vector<llama_token> history_;  // the token at each position cached in sequence 0
    Sampler sampler_;
    std::vector<llama_token> recent_;
    Model * model_ = nullptr;
    Napi::ObjectReference modelRef_;

    std::thread worker_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool hasJob_ = false;
    bool stopping_ = false;
    Job job_;
    Napi::ThreadSafeFunction done_;
    std::unique_ptr<Napi::Promise::Deferred> deferred_;
    bool busy_ = false;
    bool disposeRequested_ = false;
};

Napi::Value LoadModel(const Napi::CallbackInfo & info);
Napi::Value SampleToken(const Napi::CallbackInfo & info);

}  // namespace cllm
