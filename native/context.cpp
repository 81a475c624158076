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

// One block, evaluated in ONE llama_decode per n_batch chunk, with logits at every position. Only the
// argmax (and optionally its margin over the runner-up) per position leaves C++.
class DecodeWorker : public Napi::AsyncWorker {
  public:
    DecodeWorker(Napi::Env env, Context * owner, llama_context * ctx, llama_batch * batch, int32_t nBatch,
                 std::vector<llama_token> tokens, llama_pos start, bool wantMargins)
        : Napi::AsyncWorker(env, "cllm.decode"),
          deferred_(Napi::Promise::Deferred::New(env)),
          owner_(owner),
          ctx_(ctx),
          batch_(batch),
          nBatch_(nBatch),
          tokens_(std::move(tokens)),
          start_(start),
          wantMargins_(wantMargins) {}

    Napi::Promise promise() { return deferred_.Promise(); }

  protected:
    void Execute() override {
        const int32_t n = tokens_.size();
        const int32_t nVocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx_)));
        argmax_.resize(n);
        if (wantMargins_) margins_.resize(n);
        for (int32_t offset = 0; offset < n; offset += nBatch_) {
            const int32_t m = std::min(nBatch_, n - offset);
            batch_->n_tokens = m;
            for (int32_t i = 0; i < m; i++) {
                batch_->token[i] = tokens_[offset + i];
                batch_->pos[i] = start_ + offset + i;
                batch_->n_seq_id[i] = 1;
                batch_->seq_id[i][0] = 0;
                batch_->logits[i] = 1;
            }
            clearThreadErrors();
            int32_t rc = llama_decode(ctx_, *batch_);
            if (rc != 0) {
                std::string why = threadErrors();
                SetError(rc == 1 ? "the context is full" : "llama_decode failed (" + std::to_string(rc) + ")" + (why.empty() ? "" : ": " + why));
                return;
            }
            for (int32_t i = 0; i < m; i++) {
                Top2 best = top2(llama_get_logits_ith(ctx_, i), nVocab);
                argmax_[offset + i] = best.token;
                if (wantMargins_) margins_[offset + i] = best.margin;
            }
        }
    }

    void OnOK() override {
        owner_->finishDecode();
        Napi::Env env = Env();
        Napi::Object out = Napi::Object::New(env);
        Napi::Int32Array argmax = Napi::Int32Array::New(env, argmax_.size());
        std::copy(argmax_.begin(), argmax_.end(), argmax.Data());
        out.Set("argmax", argmax);
        if (wantMargins_) {
            Napi::Float32Array margins = Napi::Float32Array::New(env, margins_.size());
            std::copy(margins_.begin(), margins_.end(), margins.Data());
            out.Set("margins", margins);
        }
        deferred_.Resolve(out);
    }

    void OnError(const Napi::Error & error) override {
        owner_->finishDecode();
        deferred_.Reject(error.Value());
    }

  private:
    Napi::Promise::Deferred deferred_;
    Context * owner_;
    llama_context * ctx_;
    llama_batch * batch_;
    int32_t nBatch_;
    std::vector<llama_token> tokens_;
    llama_pos start_;
    bool wantMargins_;
    std::vector<llama_token> argmax_;
    std::vector<float> margins_;
};

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

// new Context(model, { contextSize, batchSize, threads })
Context::Context(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Context>(info) {
    Napi::Env env = info.Env();
    auto * data = env.GetInstanceData<AddonData>();
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(data->modelConstructor.Value()) || !info[1].IsObject()) {
        throw Napi::TypeError::New(env, "new Context(model, { contextSize, batchSize, threads })");
    }
    model_ = Model::Unwrap(info[0].As<Napi::Object>());
    if (!model_->get()) throw Napi::Error::New(env, "the model has been disposed");
    Napi::Object options = info[1].As<Napi::Object>();
    llama_context_params params = llama_context_default_params();
    params.n_ctx = options.Get("contextSize").ToNumber().Uint32Value();
    params.n_batch = options.Get("batchSize").ToNumber().Uint32Value();
    params.n_ubatch = params.n_batch;
    params.n_seq_max = 1;
    params.n_threads = params.n_threads_batch = options.Get("threads").ToNumber().Int32Value();
    params.no_perf = true;
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
}

Context::~Context() { free(); }

void Context::free() {
    if (!ctx_) return;
    llama_batch_free(batch_);
    llama_free(ctx_);
    ctx_ = nullptr;
    model_->release();
    modelRef_.Reset();
}

void Context::finishDecode() {
    busy_ = false;
    if (disposeRequested_) free();
}

llama_context * Context::live(Napi::Env env) const {
    if (!ctx_ || disposeRequested_) throw Napi::Error::New(env, "the context has been disposed");
    if (busy_) throw Napi::Error::New(env, "the context is busy with another decode");
    return ctx_;
}

// decode(tokens: Int32Array, startPosition, wantMargins) -> Promise<{ argmax, margins? }>
Napi::Value Context::Decode(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_context * ctx = live(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        throw Napi::TypeError::New(env, "decode(tokens: Int32Array, startPosition, wantMargins)");
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
    auto * worker = new DecodeWorker(env, this, ctx, &batch_, nBatch_, std::vector<llama_token>(ids, ids + n),
                                     static_cast<llama_pos>(start), info[2].ToBoolean().Value());
    Napi::Promise promise = worker->promise();
    busy_ = true;
    worker->Queue();
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
