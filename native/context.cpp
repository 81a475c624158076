// An inference context: a KV cache, block decoding with per-position argmax, and roll-back.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "addon.h"

namespace cllm {

namespace {

struct Top2 {
    llama_token token;
    float margin;
};

Top2 top2(const float * logits, int32_t nVocab) {
    llama_token best = 0;
    float first = -std::numeric_limits<float>::infinity();
    float second = first;
    for (int32_t t = 0; t < nVocab; t++) {
        float v = logits[t];
        if (v > first) {
            second = first;
            first = v;
            best = t;
        } else if (v > second) {
            second = v;
        }
    }
    return {best, first - second};
}

// log softmax(logits)[target], in double so that a long text's sum of them does not drift.
float logProbability(const float * logits, int32_t nVocab, llama_token target) {
    float maxLogit = -std::numeric_limits<float>::infinity();
    for (int32_t t = 0; t < nVocab; t++) maxLogit = std::max(maxLogit, logits[t]);
    double sum = 0;
    for (int32_t t = 0; t < nVocab; t++) sum += std::exp(static_cast<double>(logits[t] - maxLogit));
    return static_cast<float>(logits[target] - maxLogit - std::log(sum));
}

}  // namespace

Napi::Function Context::Define(Napi::Env env) {
    return DefineClass(env, "Context",
                       {
                           InstanceMethod<&Context::Decode>("decode"),
                           InstanceMethod<&Context::Rollback>("rollback"),
                           InstanceMethod<&Context::Size>("size"),
                           InstanceMethod<&Context::CachedTokens>("cachedTokens"),
                           InstanceMethod<&Context::Dispose>("dispose"),
                       });
}

// new Context(model, { contextSize, batchSize, threads, exact })
Context::Context(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Context>(info) {
    Napi::Env env = info.Env();
    auto * data = env.GetInstanceData<AddonData>();
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(data->modelConstructor.Value()) || !info[1].IsObject()) {
        throw Napi::TypeError::New(env, "new Context(model, { contextSize, batchSize, threads })");
    }
    model_ = Model::Unwrap(info[0].As<Napi::Object>());
    if (!model_->isLive()) throw Napi::Error::New(env, "the model has been disposed");
    Napi::Object options = info[1].As<Napi::Object>();
    llama_context_params params = llama_context_default_params();
    params.n_ctx = options.Get("contextSize").ToNumber().Uint32Value();
    params.n_batch = options.Get("batchSize").ToNumber().Uint32Value();
    params.n_ubatch = params.n_batch;
    params.n_seq_max = 1;
    params.n_threads = params.n_threads_batch = options.Get("threads").ToNumber().Int32Value();
    params.no_perf = true;
    // Exact mode: an F32 KV cache without flash attention. llama.cpp's defaults (F16 cache, flash attention)
    // halve the cache's memory, but their F16 rounding differs between a block and one token at a time by
    // about 1e-3 in the logits, enough to flip near-ties between Jacobi and greedy decoding.
    if (options.Get("exact").ToBoolean().Value()) {
        params.type_k = params.type_v = GGML_TYPE_F32;
        params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    }
    clearThreadErrors();
    ctx_ = llama_init_from_model(model_->get(), params);
    if (!ctx_) {
        std::string why = threadErrors();
        throw Napi::Error::New(env, "could not create a context" + (why.empty() ? std::string() : ": " + why));
    }
    batch_ = llama_batch_init(params.n_batch, 0, 1);
    nBatch_ = params.n_batch;
    modelRef_ = Napi::Persistent(info[0].As<Napi::Object>());
    model_->retain();
    done_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo &) {}), "cllm.decode", 0, 1);
    done_.Unref(env);
    worker_ = std::thread([this] { workerLoop(); });
}

Context::~Context() { free(); }

void Context::free() {
    if (!ctx_) return;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    worker_.join();
    done_.Release();
    llama_batch_free(batch_);
    llama_free(ctx_);
    ctx_ = nullptr;
    model_->release();
    modelRef_.Reset();
}

void Context::workerLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return hasJob_ || stopping_; });
        if (stopping_) return;
        hasJob_ = false;
        lock.unlock();
        run(job_);
        // Hands the result to the JS thread; the job is not touched again until finish() has run there.
        // The call only fails while Node is shutting down, when no one waits for the result.
        done_.BlockingCall([this](Napi::Env env, Napi::Function) { finish(env); });
        lock.lock();
    }
}

// One block, evaluated in ONE llama_decode per n_batch chunk, with logits at every position. Only the
// argmax (and optionally its margin over the runner-up) per position leaves C++.
void Context::run(Job & job) {
    const int32_t n = job.tokens.size();
    const int32_t nVocab = llama_vocab_n_tokens(model_->vocab());
    job.argmax.resize(job.outputs == Outputs::None ? 0 : n);
    job.margins.resize(job.outputs == Outputs::Margins ? n : 0);
    job.logprobs.resize(job.outputs == Outputs::LogProbs ? n : 0);
    job.error.clear();
    for (int32_t offset = 0; offset < n; offset += nBatch_) {
        const int32_t m = std::min(nBatch_, n - offset);
        batch_.n_tokens = m;
        for (int32_t i = 0; i < m; i++) {
            batch_.token[i] = job.tokens[offset + i];
            batch_.pos[i] = job.start + offset + i;
            batch_.n_seq_id[i] = 1;
            batch_.seq_id[i][0] = 0;
            batch_.logits[i] = job.outputs != Outputs::None;
        }
        clearThreadErrors();
        int32_t rc = llama_decode(ctx_, batch_);
        if (rc != 0) {
            std::string why = threadErrors();
            job.error = rc == 1 ? "the context is full" : "llama_decode failed (" + std::to_string(rc) + ")" + (why.empty() ? "" : ": " + why);
            return;
        }
        for (int32_t i = 0; i < m && job.outputs != Outputs::None; i++) {
            const float * logits = llama_get_logits_ith(ctx_, i);
            Top2 best = top2(logits, nVocab);
            job.argmax[offset + i] = best.token;
            if (job.outputs == Outputs::Margins) job.margins[offset + i] = best.margin;
            if (job.outputs == Outputs::LogProbs) job.logprobs[offset + i] = logProbability(logits, nVocab, job.targets[offset + i]);
        }
    }
}

void Context::finish(Napi::Env env) {
    busy_ = false;
    done_.Unref(env);
    Unref();
    std::unique_ptr<Napi::Promise::Deferred> deferred = std::move(deferred_);
    if (!job_.error.empty()) {
        deferred->Reject(Napi::Error::New(env, job_.error).Value());
    } else {
        Napi::Object out = Napi::Object::New(env);
        Napi::Int32Array argmax = Napi::Int32Array::New(env, job_.argmax.size());
        std::copy(job_.argmax.begin(), job_.argmax.end(), argmax.Data());
        out.Set("argmax", argmax);
        if (job_.outputs == Outputs::Margins) {
            Napi::Float32Array margins = Napi::Float32Array::New(env, job_.margins.size());
            std::copy(job_.margins.begin(), job_.margins.end(), margins.Data());
            out.Set("margins", margins);
        }
        if (job_.outputs == Outputs::LogProbs) {
            Napi::Float32Array logprobs = Napi::Float32Array::New(env, job_.logprobs.size());
            std::copy(job_.logprobs.begin(), job_.logprobs.end(), logprobs.Data());
            out.Set("logprobs", logprobs);
        }
        deferred->Resolve(out);
    }
    if (disposeRequested_) free();
}

llama_context * Context::live(Napi::Env env) const {
    if (!ctx_ || disposeRequested_) throw Napi::Error::New(env, "the context has been disposed");
    if (busy_) throw Napi::Error::New(env, "the context is busy with another decode");
    return ctx_;
}

// decode(tokens: Int32Array, startPosition, outputs: "argmax" | "margins" | "logprobs" | "none", targets?: Int32Array)
//   -> Promise<{ argmax, margins?, logprobs? }>; logprobs[i] is log p(targets[i]) at position startPosition + i.
Napi::Value Context::Decode(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_context * ctx = live(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        throw Napi::TypeError::New(env, "decode(tokens: Int32Array, startPosition, outputs)");
    }
    Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
    int64_t start = info[1].ToNumber().Int64Value();
    const int64_t n = tokens.ElementLength();
    const int64_t nCtx = llama_n_ctx(ctx);
    const int32_t nVocab = llama_vocab_n_tokens(model_->vocab());
    if (n == 0) throw Napi::RangeError::New(env, "decode needs at least one token");
    if (start < 0 || start + n > nCtx) {
        throw Napi::RangeError::New(env, "the context is full: " + std::to_string(start + n) + " positions exceed its size of " + std::to_string(nCtx));
    }
    const llama_token * ids = tokens.Data();
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= nVocab) throw Napi::RangeError::New(env, "token id " + std::to_string(ids[i]) + " is out of range");
    }
    job_.tokens.assign(ids, ids + n);
    job_.start = static_cast<llama_pos>(start);
    const std::string outputs = info[2].ToString().Utf8Value();
    job_.outputs = outputs == "none" ? Outputs::None : outputs == "margins" ? Outputs::Margins : outputs == "logprobs" ? Outputs::LogProbs : Outputs::Argmax;
    if (job_.outputs == Outputs::LogProbs) {
        if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || info[3].As<Napi::Int32Array>().ElementLength() != static_cast<size_t>(n)) {
            throw Napi::TypeError::New(env, "decode(tokens, startPosition, \"logprobs\", targets: Int32Array of the same length)");
        }
        const llama_token * targets = info[3].As<Napi::Int32Array>().Data();
        for (int64_t i = 0; i < n; i++) {
            if (targets[i] < 0 || targets[i] >= nVocab) throw Napi::RangeError::New(env, "target token id " + std::to_string(targets[i]) + " is out of range");
        }
        job_.targets.assign(targets, targets + n);
    }
    deferred_ = std::make_unique<Napi::Promise::Deferred>(env);
    Napi::Promise promise = deferred_->Promise();
    busy_ = true;
    done_.Ref(env);  // keeps the process alive while a decode is in flight
    Ref();           // and this object: a collected Context must not free what the worker is using
    {
        std::lock_guard<std::mutex> lock(mutex_);
        hasJob_ = true;
    }
    wake_.notify_one();
    return promise;
}

// rollback(position): forget every cached position >= position.
Napi::Value Context::Rollback(const Napi::CallbackInfo & info) {
    llama_context * ctx = live(info.Env());
    int64_t position = info[0].ToNumber().Int64Value();
    if (position < 0) throw Napi::RangeError::New(info.Env(), "rollback position must be >= 0");
    if (!llama_memory_seq_rm(llama_get_memory(ctx), 0, static_cast<llama_pos>(position), -1)) {
        throw Napi::Error::New(info.Env(), "the KV cache could not be rolled back");
    }
    return info.Env().Undefined();
}

Napi::Value Context::Size(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), llama_n_ctx(live(info.Env())));
}

Napi::Value Context::CachedTokens(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), llama_memory_seq_pos_max(llama_get_memory(live(info.Env())), 0) + 1);
}

Napi::Value Context::Dispose(const Napi::CallbackInfo & info) {
    if (busy_) {
        disposeRequested_ = true;
    } else {
        free();
    }
    return info.Env().Undefined();
}

}  // namespace cllm
