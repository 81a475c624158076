// An inference context: a KV cache, block decoding with the chosen token (argmax or sample) per position, and roll-back.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

#include "addon.h"

#include "ggml-cpu.h"  // threadpools; ggml_cpu_set_batch_invariant, added by native/patches/ggml-cpu-batch-invariant.patch

#ifdef CLLM_CUDA_BATCH_INVARIANT
// Added to ggml-cuda by native/patches/ggml-cuda-batch-invariant.patch.
extern "C" void ggml_backend_cuda_set_batch_invariant(bool on);
#endif

namespace cllm {

namespace {

// Sequences a draft tree may use: one per leaf, each a bit of a uint64_t (treeSequences).
constexpr int32_t kMaxTreeSequences = 64;
constexpr int32_t kMaxTopK = 16;

// The k best tokens, best first, by insertion into a short sorted list: one pass over the vocabulary.
void topTokens(const float * logits, int32_t nVocab, int32_t k, llama_token * out) {
    std::vector<float> best(k, -std::numeric_limits<float>::infinity());
    std::fill(out, out + k, 0);
    for (int32_t t = 0; t < nVocab; t++) {
        float v = logits[t];
        if (!(v > best[k - 1])) continue;
        int32_t i = k - 1;
        for (; i > 0 && v > best[i - 1]; i--) {
            best[i] = best[i - 1];
            out[i] = out[i - 1];
        }
        best[i] = v;
        out[i] = t;
    }
}

// Validates a draft tree given as parent indices and gives each node the sequences it belongs to, as bits:
// the main chain (nodes 0..m-1, each the parent of the next) takes sequence 0, every other leaf one of its
// own, and a node belongs to the sequence of every leaf below it. Returns an error, or "".
std::string treeSequences(const std::vector<int32_t> & parents, int32_t maxSequences, std::vector<uint64_t> & sequences, int32_t & count) {
    const int64_t n = parents.size();
    if (parents[0] != -1) return "the first node of a draft tree must be its root (parent -1)";
    std::vector<bool> hasChild(n, false);
    for (int64_t i = 1; i < n; i++) {
        if (parents[i] < 0 || parents[i] >= i) return "draft tree node " + std::to_string(i) + " must have a parent before it";
        hasChild[parents[i]] = true;
    }
    int64_t mainChain = 1;
    while (mainChain < n && parents[mainChain] == mainChain - 1) mainChain++;
    auto ownSequence = [&](int64_t i) { return !hasChild[i] && i != mainChain - 1; };
    count = 1;
    for (int64_t i = 0; i < n; i++) count += ownSequence(i);
    if (count > maxSequences) return "a draft tree may have at most " + std::to_string(maxSequences) + " leaves";
    sequences.assign(n, 0);
    sequences[mainChain - 1] = 1;
    int32_t next = 1;
    for (int64_t i = 0; i < n; i++) {
        if (ownSequence(i)) sequences[i] |= uint64_t(1) << next++;
    }
    for (int64_t i = n - 1; i > 0; i--) sequences[parents[i]] |= sequences[i];
    return "";
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

// The patched ggml-cpu keeps every width of a pass on kernels whose summation order does not depend on it
// (llamafile's tinyBLAS, in-order flash attention), so llama.cpp's defaults are exact on the CPU, and
// fastest. Elsewhere F16 rounding and the attention kernels chosen by width differ between a block and one
// token at a time by about 1e-3 in the logits, enough to flip near-ties between Jacobi and greedy decoding.
bool exactKeepsDefaultCache() {
#ifdef CLLM_CPU_BATCH_INVARIANT
    return std::string(CLLM_BACKEND) == "cpu";
#else
    return false;
#endif
}

Napi::Function Context::Define(Napi::Env env) {
    return DefineClass(env, "Context",
                       {
                           InstanceMethod<&Context::Decode>("decode"),
                           InstanceMethod<&Context::DecodeNow>("decodeNow"),
                           InstanceMethod<&Context::SetThreads>("setThreads"),
                           InstanceMethod<&Context::Rollback>("rollback"),
                           InstanceMethod<&Context::Size>("size"),
                           InstanceMethod<&Context::CachedTokens>("cachedTokens"),
                           InstanceMethod<&Context::GraphsReused>("graphsReused"),
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
    // A forward pass checks for Ctrl-C between the operations of its graph; ubatches of at most 512 tokens
    // keep each operation short, so that a long prefill stops within a fraction of a second.
    params.n_ubatch = std::min<uint32_t>(params.n_batch, 512);
    // Draft trees put each branch in a sequence of its own; tokens shared by branches belong to all of them,
    // which needs the unified cache (one buffer for every sequence).
    // llama.cpp reserves an output per sequence, so a batch must hold at least as many tokens.
    params.n_seq_max = std::min<uint32_t>(kMaxTreeSequences, params.n_batch);
    params.kv_unified = true;
    params.n_threads = params.n_threads_batch = options.Get("threads").ToNumber().Int32Value();
    params.no_perf = true;
    params.abort_callback = [](void *) { return interruptRequested(); };
    const bool exact = options.Get("exact").ToBoolean().Value();
#ifdef CLLM_CPU_BATCH_INVARIANT
    // Process-wide: the last context created decides.
    ggml_cpu_set_batch_invariant(exact);
#endif
    if (exact && !exactKeepsDefaultCache()) {
        params.type_k = params.type_v = GGML_TYPE_F32;
        params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    }
#ifdef CLLM_CUDA_BATCH_INVARIANT
    // On CUDA the kernels themselves differ by batch width: the patched ggml-cuda computes each token of a
    // block as it would compute it alone. Fused one-token kernels (a matmul with its activation) would not
    // match the unfused ones a block gets, so fusion goes off too; ggml reads this once, on first use, so
    // the first context of a process decides (an explicit GGML_CUDA_DISABLE_FUSION wins).
    ggml_backend_cuda_set_batch_invariant(exact);
    if (exact && !std::getenv("GGML_CUDA_DISABLE_FUSION")) {
#ifdef _WIN32
        _putenv_s("GGML_CUDA_DISABLE_FUSION", "1");
#else
        setenv("GGML_CUDA_DISABLE_FUSION", "1", 0);
#endif
    }
#endif
    clearThreadErrors();
    ctx_ = llama_init_from_model(model_->get(), params);
    if (!ctx_) {
        std::string why = threadErrors();
        throw Napi::Error::New(env, "could not create a context" + (why.empty() ? std::string() : ": " + why));
    }
    // The context's own pool of CPU threads: whichever thread calls llama_decode (the JavaScript thread for
    // short passes, the context's thread for long ones) leads the same workers. OpenMP would give each
    // calling thread a team of its own, and two teams on the same cores slow every pass 2x to 3x.
    ggml_threadpool_params pool = ggml_threadpool_params_default(params.n_threads);
    threadpool_ = ggml_threadpool_new(&pool);
    llama_attach_threadpool(ctx_, threadpool_, threadpool_);
    batch_ = llama_batch_init(params.n_batch, 0, kMaxTreeSequences);
    sampler_ = Sampler(llama_vocab_n_tokens(model_->vocab()));
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
    ggml_threadpool_free(threadpool_);
    threadpool_ = nullptr;
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

// One block, evaluated in ONE llama_decode per n_batch chunk, with logits at every position. Only
// the chosen token (and optionally its margin over the runner-up) per position leaves C++.
void Context::run(Job & job) {
    const int32_t n = job.tokens.size();
    const int32_t nVocab = llama_vocab_n_tokens(model_->vocab());
    job.chosen.resize(job.outputs == Outputs::None ? 0 : n);
    job.margins.resize(job.outputs == Outputs::Margins ? n : 0);
    job.logprobs.resize(job.outputs == Outputs::LogProbs ? n : 0);
    job.topk.resize(static_cast<size_t>(n) * job.topK);
    job.decodeMs = 0;
    job.error.clear();
    for (int32_t offset = 0; offset < n; offset += nBatch_) {
        const int32_t m = std::min(nBatch_, n - offset);
        if (job.parents.empty()) {
            batch_.n_tokens = m;
            for (int32_t i = 0; i < m; i++) {
                batch_.token[i] = job.tokens[offset + i];
                batch_.pos[i] = job.positions[offset + i];
                batch_.n_seq_id[i] = 1;
                batch_.seq_id[i][0] = 0;
                batch_.logits[i] = job.outputs != Outputs::None;
            }
        } else {
            fillTreeBatch(job);  // Decode() checked that a tree fits in one batch
        }
        clearThreadErrors();
        auto t0 = std::chrono::steady_clock::now();
        int32_t rc = llama_decode(ctx_, batch_);
        job.decodeMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (rc != 0) {
            std::string why = threadErrors();
            job.error = rc == 2 && interruptRequested() ? "interrupted" : rc == 1 ? "the context is full" : "llama_decode failed (" + std::to_string(rc) + ")" + (why.empty() ? "" : ": " + why);
            return;
        }
        for (int32_t i = 0; i < m && job.outputs != Outputs::None; i++) {
            const int32_t node = offset + i;
            float * logits = llama_get_logits_ith(ctx_, i);
            if (job.outputs == Outputs::LogProbs) job.logprobs[node] = logProbability(logits, nVocab, job.targets[node]);
            if (job.sampling.penalized()) {
                recentTokens(job, node, recent_);
                sampler_.penalize(job.sampling, logits, recent_);
            }
            // The token after the node is sampled for the position after it.
            Choice choice = sampler_.choose(job.sampling, logits, nVocab, job.positions[node] + 1);
            // NaN weights make every logit NaN: the argmax would be token 0 and the output silently empty.
            if (!std::isfinite(logits[choice.token])) {
                job.error = "the model computed logits that are not finite numbers (NaN or infinity) at position " + std::to_string(job.positions[node]) + ": its weights or settings are damaged";
                return;
            }
            job.chosen[node] = choice.token;
            if (job.outputs == Outputs::Margins) job.margins[node] = choice.margin;
            if (job.topK) topTokens(logits, nVocab, job.topK, &job.topk[static_cast<size_t>(node) * job.topK]);
        }
    }
    // The tokens now cached in sequence 0, the ones later penalties look back on.
    history_.resize(std::min<size_t>(history_.size(), job.start));
    for (int32_t i = 0; i < n; i++) {
        if (job.parents.empty() || (job.sequences[i] & 1)) history_.push_back(job.tokens[i]);
    }
}

// The last repeatLastN tokens up to and including a node: the node, its ancestors, then the cached tokens
// before the pass. A draft's own tokens count, as they would had decoding reached it one token at a time.
void Context::recentTokens(const Job & job, int32_t node, std::vector<llama_token> & out) const {
    const size_t n = job.sampling.repeatLastN;
    out.clear();
    for (int32_t j = node; j >= 0 && out.size() < n; j = job.parents.empty() ? j - 1 : job.parents[j]) out.push_back(job.tokens[j]);
    for (int64_t p = std::min<int64_t>(job.start, history_.size()) - 1; p >= 0 && out.size() < n; p--) out.push_back(history_[p]);
}

// A draft tree in one batch. A node sits at start + its depth and belongs to the sequence of every leaf below
// it, so that it attends to exactly its ancestors: llama.cpp masks a token by its first sequence, and every
// sequence through a node also runs through all of the node's ancestors. The main chain takes sequence 0 and
// the first cells, so that keeping an accepted prefix of it leaves the cache as one-token decoding would.
void Context::fillTreeBatch(const Job & job) {
    const int32_t n = job.tokens.size();
    llama_memory_t memory = llama_get_memory(ctx_);
    for (int32_t s = 1; s < job.sequenceCount; s++) llama_memory_seq_cp(memory, 0, s, -1, -1);
    treeInCache_ = true;

    batch_.n_tokens = n;
    for (int32_t i = 0; i < n; i++) {
        batch_.token[i] = job.tokens[i];
        batch_.pos[i] = job.positions[i];
        batch_.logits[i] = job.outputs != Outputs::None;
        int32_t k = 0;
        if (job.sequences[i] & 1) batch_.seq_id[i][k++] = 0;  // sequence 0 first: it decides the node's mask
        for (int32_t s = 1; s < job.sequenceCount; s++) {
            if (job.sequences[i] >> s & 1) batch_.seq_id[i][k++] = s;
        }
        batch_.n_seq_id[i] = k;
    }
}

// The result object of a finished job: only per-position results, never a logits matrix.
Napi::Object Context::result(Napi::Env env) const {
    Napi::Object out = Napi::Object::New(env);
    auto int32s = [&](const std::vector<llama_token> & v) {
        Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
        std::copy(v.begin(), v.end(), a.Data());
        return a;
    };
    auto floats = [&](const std::vector<float> & v) {
        Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
        std::copy(v.begin(), v.end(), a.Data());
        return a;
    };
    out.Set("chosen", int32s(job_.chosen));
    if (job_.outputs == Outputs::Margins) out.Set("margins", floats(job_.margins));
    if (job_.outputs == Outputs::LogProbs) out.Set("logprobs", floats(job_.logprobs));
    if (job_.topK) out.Set("topk", int32s(job_.topk));
    out.Set("decodeMs", job_.decodeMs);
    return out;
}

void Context::finish(Napi::Env env) {
    busy_ = false;
    done_.Unref(env);
    Unref();
    std::unique_ptr<Napi::Promise::Deferred> deferred = std::move(deferred_);
    if (!job_.error.empty()) {
        deferred->Reject(Napi::Error::New(env, job_.error).Value());
    } else {
        deferred->Resolve(result(env));
    }
    if (disposeRequested_) free();
}

llama_context * Context::live(Napi::Env env) const {
    if (!ctx_ || disposeRequested_) throw Napi::Error::New(env, "the context has been disposed");
    if (busy_) throw Napi::Error::New(env, "the context is busy with another decode");
    return ctx_;
}

namespace {

// An optional Int32Array option of exactly n elements, or an empty vector.
std::vector<int32_t> int32Option(Napi::Env env, Napi::Object options, const char * name, int64_t n) {
    Napi::Value value = options.Get(name);
    if (value.IsUndefined()) return {};
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || value.As<Napi::Int32Array>().ElementLength() != static_cast<size_t>(n)) {
        throw Napi::TypeError::New(env, std::string("decode: ") + name + " must be an Int32Array as long as the tokens");
    }
    const int32_t * data = value.As<Napi::Int32Array>().Data();
    return std::vector<int32_t>(data, data + n);
}

// decode's `sampling` option (llama.cpp's meanings, see sampler.h); absent: greedy. Where each setting may
// lie is checked once, in src/engine/sampling.ts, the one table of bounds; here only that each value is a
// number the C++ type can hold.
SamplingParams samplingOption(Napi::Env env, Napi::Value value) {
    SamplingParams params;
    if (value.IsUndefined()) return params;
    if (!value.IsObject()) throw Napi::TypeError::New(env, "sampling must be an object");
    Napi::Object options = value.As<Napi::Object>();
    auto number = [&](const char * name, double fallback, double largest = 0) {
        Napi::Value v = options.Get(name);
        if (v.IsUndefined()) return fallback;
        double x = v.ToNumber().DoubleValue();
        bool whole = largest > 0;
        if (!std::isfinite(x) || (whole && (x != std::floor(x) || x < 0 || x > largest))) {
            throw Napi::RangeError::New(env, std::string("sampling.") + name + (whole ? " must be a whole number from 0 to " + std::to_string(static_cast<uint64_t>(largest)) : " must be a finite number"));
        }
        return x;
    };
    constexpr double kInt32 = std::numeric_limits<int32_t>::max();
    params.temperature = number("temperature", params.temperature);
    params.topK = number("topK", params.topK, kInt32);
    params.topP = number("topP", params.topP);
    params.minP = number("minP", params.minP);
    params.repeatPenalty = number("repeatPenalty", params.repeatPenalty);
    params.repeatLastN = number("repeatLastN", params.repeatLastN, kInt32);
    params.presencePenalty = number("presencePenalty", params.presencePenalty);
    params.frequencyPenalty = number("frequencyPenalty", params.frequencyPenalty);
    params.seed = number("seed", 0, 9007199254740991.0);
    return params;
}

}  // namespace

// sampleToken(logits: Float32Array, position, sampling, recent?: Int32Array) -> { token, margin }: the
// sampler that decode uses, over given logits (penalized for the tokens `recent`), to test its distribution.
Napi::Value SampleToken(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array || info[0].As<Napi::Float32Array>().ElementLength() == 0) {
        throw Napi::TypeError::New(env, "sampleToken(logits: Float32Array, position, sampling, recent?: Int32Array)");
    }
    Napi::Float32Array input = info[0].As<Napi::Float32Array>();
    std::vector<float> logits(input.Data(), input.Data() + input.ElementLength());
    const int32_t nVocab = logits.size();
    SamplingParams params = samplingOption(env, info[2]);
    Sampler sampler(nVocab);
    if (info.Length() > 3 && !info[3].IsUndefined()) {
        Napi::Int32Array recentArray = info[3].As<Napi::Int32Array>();
        std::vector<llama_token> recent(recentArray.Data(), recentArray.Data() + recentArray.ElementLength());
        for (llama_token t : recent) {
            if (t < 0 || t >= nVocab) throw Napi::RangeError::New(env, "token id " + std::to_string(t) + " is out of range");
        }
        if (recent.size() > static_cast<size_t>(params.repeatLastN)) recent.erase(recent.begin(), recent.end() - params.repeatLastN);
        if (params.penalized()) sampler.penalize(params, logits.data(), recent);
    }
    Choice choice = sampler.choose(params, logits.data(), nVocab, info[1].ToNumber().Int64Value());
    Napi::Object out = Napi::Object::New(env);
    out.Set("token", choice.token);
    out.Set("margin", choice.margin);
    return out;
}

// decode(tokens: Int32Array, startPosition, { outputs, targets?, parents?, topK?, sampling? })
//   -> Promise<{ chosen, margins?, logprobs?, topk?, decodeMs }>, computed on the context's thread
// outputs: "chosen" | "margins" | "logprobs" | "none"; logprobs[i] is log p(targets[i]) at position i.
// parents: a draft tree (parents[i] < i, -1 for node 0), scored in one pass; topK: candidates per position.
Napi::Value Context::Decode(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    prepare(info);
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

// decodeNow(...): the same as decode, run on the calling thread and returned at once. A short pass
// costs less than the hand-over to the context's thread and back (tens of microseconds).
Napi::Value Context::DecodeNow(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    prepare(info);
    run(job_);
    if (!job_.error.empty()) throw Napi::Error::New(env, job_.error);
    return result(env);
}

// Checks decode's arguments and fills job_ from them.
void Context::prepare(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_context * ctx = live(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || !info[2].IsObject()) {
        throw Napi::TypeError::New(env, "decode(tokens: Int32Array, startPosition, { outputs, targets?, parents?, topK? })");
    }
    Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
    int64_t start = info[1].ToNumber().Int64Value();
    Napi::Object options = info[2].As<Napi::Object>();
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
    const std::string outputs = options.Get("outputs").ToString().Utf8Value();
    Outputs kind = outputs == "none" ? Outputs::None : outputs == "margins" ? Outputs::Margins : outputs == "logprobs" ? Outputs::LogProbs : Outputs::Chosen;
    std::vector<int32_t> targets = int32Option(env, options, "targets", n);
    if (kind == Outputs::LogProbs && targets.empty()) throw Napi::TypeError::New(env, "decode: outputs \"logprobs\" needs targets");
    for (int32_t target : targets) {
        if (target < 0 || target >= nVocab) throw Napi::RangeError::New(env, "target token id " + std::to_string(target) + " is out of range");
    }
    std::vector<int32_t> parents = int32Option(env, options, "parents", n);
    if (!parents.empty()) {
        if (n > nBatch_) throw Napi::RangeError::New(env, "a draft tree of " + std::to_string(n) + " nodes exceeds the batch size of " + std::to_string(nBatch_));
        std::string problem = treeSequences(parents, llama_n_seq_max(ctx), job_.sequences, job_.sequenceCount);
        if (!problem.empty()) throw Napi::RangeError::New(env, problem);
    }
    Napi::Value topK = options.Get("topK");
    int32_t k = topK.IsUndefined() ? 0 : topK.ToNumber().Int32Value();
    if (k < 0 || k > std::min(kMaxTopK, nVocab)) throw Napi::RangeError::New(env, "topK must be between 0 and " + std::to_string(std::min(kMaxTopK, nVocab)));
    if (kind == Outputs::None) k = 0;

    SamplingParams sampling = samplingOption(env, options.Get("sampling"));

    job_.tokens.assign(ids, ids + n);
    job_.start = static_cast<llama_pos>(start);
    job_.positions.resize(n);
    for (int64_t i = 0; i < n; i++) job_.positions[i] = parents.empty() || i == 0 ? job_.start + i : job_.positions[parents[i]] + 1;
    job_.sampling = kind == Outputs::LogProbs ? SamplingParams{} : sampling;
    job_.outputs = kind;
    job_.targets = std::move(targets);
    job_.parents = std::move(parents);
    job_.topK = k;
}

// rollback(position): forget every cached position >= position, and every branch of a draft tree.
Napi::Value Context::Rollback(const Napi::CallbackInfo & info) {
    llama_context * ctx = live(info.Env());
    int64_t position = info[0].ToNumber().Int64Value();
    if (position < 0) throw Napi::RangeError::New(info.Env(), "rollback position must be >= 0");
    llama_memory_t memory = llama_get_memory(ctx);
    if (treeInCache_) {
        llama_memory_seq_keep(memory, 0);  // drops every branch of the last draft tree
        treeInCache_ = false;
    }
    history_.resize(std::min<size_t>(history_.size(), position));
    if (!llama_memory_seq_rm(memory, 0, static_cast<llama_pos>(position), -1)) {
        throw Napi::Error::New(info.Env(), "the KV cache could not be rolled back");
    }
    return info.Env().Undefined();
}

// setThreads(n): the CPU threads of later passes; ggml starts its team per pass, so this is cheap.
Napi::Value Context::SetThreads(const Napi::CallbackInfo & info) {
    llama_context * ctx = live(info.Env());
    int32_t n = info[0].ToNumber().Int32Value();
    if (n < 1) throw Napi::RangeError::New(info.Env(), "threads must be at least 1");
    llama_set_n_threads(ctx, n, n);
    return info.Env().Undefined();
}

Napi::Value Context::Size(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), llama_n_ctx(live(info.Env())));
}

Napi::Value Context::CachedTokens(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), llama_memory_seq_pos_max(llama_get_memory(live(info.Env())), 0) + 1);
}

// Passes that reused llama.cpp's previous compute graph (and so, on CUDA, its captured CUDA graph) instead
// of building a new one.
Napi::Value Context::GraphsReused(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), llama_perf_context(live(info.Env())).n_reused);
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
