// A loaded GGUF model: metadata, tokenizer and chat template. Loading runs on a worker thread.
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

#include "addon.h"
#include "ggml-rpc.h"

namespace cllm {

namespace {

std::string metaString(const llama_model * model, const char * key) {
    char buf[512];
    int32_t n = llama_model_meta_val_str(model, key, buf, sizeof(buf));
    return n < 0 ? std::string() : std::string(buf, std::min<size_t>(n, sizeof(buf) - 1));
}

// llama_model_desc reads "<arch> <size>[ (guessed)] <file type>", and the file type may contain spaces
// ("Q4_K - Medium"); "all F32" means every tensor is F32.
std::string quantization(const llama_model * model) {
    char buf[256];
    llama_model_desc(model, buf, sizeof(buf));
    std::string desc(buf);
    for (int field = 0; field < 2; field++) {
        size_t space = desc.find(' ');
        desc = space == std::string::npos ? desc : desc.substr(space + 1);
    }
    for (const char * prefix : {"(guessed) ", "all "}) {
        if (desc.rfind(prefix, 0) == 0) desc = desc.substr(strlen(prefix));
    }
    return desc;
}

bool isRpc(ggml_backend_dev_t dev) {
    return std::strncmp(ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev)), "RPC", 3) == 0;
}

// The devices a model is spread over: this machine's GPUs, then each RPC server's, in the order given.
// Named explicitly, so that servers registered for an earlier model are not used by a later one.
std::vector<ggml_backend_dev_t> modelDevices(const std::vector<std::string> & rpcServers) {
    std::vector<ggml_backend_dev_t> devices;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        enum ggml_backend_dev_type type = ggml_backend_dev_type(dev);
        if ((type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU) && !isRpc(dev)) devices.push_back(dev);
    }
    static std::mutex registering;
    static std::set<std::string> registered;
    std::lock_guard<std::mutex> lock(registering);
    for (const std::string & endpoint : rpcServers) {
        ggml_backend_reg_t reg = ggml_backend_rpc_add_server(endpoint.c_str());
        if (!reg) throw std::runtime_error("the RPC server " + endpoint + " offers no device");
        if (registered.insert(endpoint).second) ggml_backend_register(reg);
        for (size_t i = 0; i < ggml_backend_reg_dev_count(reg); i++) devices.push_back(ggml_backend_reg_dev_get(reg, i));
    }
    devices.push_back(nullptr);
    return devices;
}

class LoadModelWorker : public Napi::AsyncProgressWorker<float> {
  public:
    LoadModelWorker(Napi::Env env, std::string path, llama_model_params params, std::vector<std::string> rpcServers,
                    Napi::Function onProgress)
        : Napi::AsyncProgressWorker<float>(env, "cllm.loadModel"),
          deferred_(Napi::Promise::Deferred::New(env)),
          path_(std::move(path)),
          params_(params),
          rpcServers_(std::move(rpcServers)) {
        if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
    }

    Napi::Promise promise() { return deferred_.Promise(); }

  protected:
    void Execute(const ExecutionProgress & progress) override {
        params_.progress_callback = [](float value, void * user) {
            static_cast<const ExecutionProgress *>(user)->Send(&value, 1);
            return !interruptRequested();
        };
        params_.progress_callback_user_data = const_cast<ExecutionProgress *>(&progress);
        try {
            devices_ = modelDevices(rpcServers_);
        } catch (const std::exception & e) {
            SetError(e.what());
            return;
        }
        params_.devices = devices_.data();
        clearThreadErrors();
        model_ = llama_model_load_from_file(path_.c_str(), params_);
        if (!model_) {
            if (interruptRequested()) {
                SetError("interrupted");
                return;
            }
            std::string why = threadErrors();
            SetError(why.empty() ? "llama.cpp could not load the model" : why);
        }
    }

    void OnProgress(const float * value, size_t count) override {
        if (count > 0 && !onProgress_.IsEmpty()) onProgress_.Call({Napi::Number::New(Env(), *value)});
    }

    void OnOK() override {
        auto * data = Env().GetInstanceData<AddonData>();
        deferred_.Resolve(data->modelConstructor.New({Napi::External<llama_model>::New(Env(), model_)}));
    }

    void OnError(const Napi::Error & error) override { deferred_.Reject(error.Value()); }

  private:
    Napi::Promise::Deferred deferred_;
    Napi::FunctionReference onProgress_;
    std::string path_;
    llama_model_params params_;
    std::vector<std::string> rpcServers_;
    std::vector<ggml_backend_dev_t> devices_;
    llama_model * model_ = nullptr;
};

}  // namespace

// loadModel(path, { gpuLayers, useMmap, rpc }, onProgress?) -> Promise<Model>
Napi::Value LoadModel(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString() || !info[1].IsObject()) {
        throw Napi::TypeError::New(env, "loadModel(path, options, onProgress?)");
    }
    Napi::Object options = info[1].As<Napi::Object>();
    llama_model_params params = llama_model_default_params();
    if (options.Has("gpuLayers")) params.n_gpu_layers = options.Get("gpuLayers").ToNumber().Int32Value();
    Napi::Value useMmap = options.Get("useMmap");
    if (useMmap.IsBoolean()) params.load_mode = useMmap.ToBoolean().Value() ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    std::vector<std::string> rpcServers;
    if (options.Get("rpc").IsArray()) {
        Napi::Array rpc = options.Get("rpc").As<Napi::Array>();
        for (uint32_t i = 0; i < rpc.Length(); i++) rpcServers.push_back(rpc.Get(i).ToString().Utf8Value());
    }
    Napi::Function onProgress = info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
    auto * worker = new LoadModelWorker(env, info[0].As<Napi::String>().Utf8Value(), params, std::move(rpcServers), onProgress);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

Napi::Function Model::Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {
                           InstanceMethod<&Model::Info>("info"),
                           InstanceMethod<&Model::Tokenize>("tokenize"),
                           InstanceMethod<&Model::Detokenize>("detokenize"),
                           InstanceMethod<&Model::TokenBytes>("tokenBytes"),
                           InstanceMethod<&Model::IsEog>("isEog"),
                           InstanceMethod<&Model::Dispose>("dispose"),
                       });
}

Model::Model(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Model>(info) {
    if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "Model is created by loadModel()");
    model_ = info[0].As<Napi::External<llama_model>>().Data();
    vocab_ = llama_model_get_vocab(model_);
}

Model::~Model() { free(); }

void Model::free() {
    if (model_) llama_model_free(model_);
    model_ = nullptr;
}

// A context still finishing a decode holds the model; it is freed when the last one lets go.
void Model::release() {
    if (--liveContexts_ == 0 && disposeRequested_) free();
}

llama_model * Model::live(Napi::Env env) const {
    if (!model_ || disposeRequested_) throw Napi::Error::New(env, "the model has been disposed");
    return model_;
}

Napi::Value Model::Info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_model * model = live(env);
    Napi::Object out = Napi::Object::New(env);
    out.Set("architecture", metaString(model, "general.architecture"));
    out.Set("name", metaString(model, "general.name"));
    char desc[256];
    llama_model_desc(model, desc, sizeof(desc));
    out.Set("description", std::string(desc));
    out.Set("parameterCount", static_cast<double>(llama_model_n_params(model)));
    out.Set("tensorBytes", static_cast<double>(llama_model_size(model)));
    out.Set("vocabularySize", llama_vocab_n_tokens(vocab_));
    out.Set("trainedContextLength", llama_model_n_ctx_train(model));
    out.Set("layers", llama_model_n_layer(model));
    out.Set("embeddingLength", llama_model_n_embd(model));
    out.Set("headCount", llama_model_n_head(model));
    out.Set("headCountKv", llama_model_n_head_kv(model));
    out.Set("bos", llama_vocab_bos(vocab_));
    out.Set("eos", llama_vocab_eos(vocab_));
    out.Set("addBos", llama_vocab_get_add_bos(vocab_));
    out.Set("recurrent", llama_model_is_recurrent(model) || llama_model_is_hybrid(model));
    out.Set("quantization", quantization(model));
    const char * tmpl = llama_model_chat_template(model, nullptr);
    out.Set("chatTemplate", tmpl ? Napi::Value(Napi::String::New(env, tmpl)) : env.Null());
    return out;
}

// tokenize(text, addSpecial, parseSpecial) -> Int32Array
Napi::Value Model::Tokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    live(env);
    std::string text = info[0].ToString().Utf8Value();
    bool addSpecial = info[1].ToBoolean().Value();
    bool parseSpecial = info[2].ToBoolean().Value();
    std::vector<llama_token> tokens(text.size() + 2);
    int32_t n = llama_tokenize(vocab_, text.data(), text.size(), tokens.data(), tokens.size(), addSpecial, parseSpecial);
    if (n < 0) {
        tokens.resize(-n);
        n = llama_tokenize(vocab_, text.data(), text.size(), tokens.data(), tokens.size(), addSpecial, parseSpecial);
    }
    if (n < 0) throw Napi::Error::New(env, "tokenization failed");
    Napi::Int32Array out = Napi::Int32Array::New(env, n);
    std::copy(tokens.begin(), tokens.begin() + n, out.Data());
    return out;
}

// detokenize(tokens, renderSpecial) -> string
Napi::Value Model::Detokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    live(env);
    Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
    bool renderSpecial = info[1].ToBoolean().Value();
    const int32_t nVocab = llama_vocab_n_tokens(vocab_);
    for (size_t i = 0; i < tokens.ElementLength(); i++) {
        if (tokens.Data()[i] < 0 || tokens.Data()[i] >= nVocab) throw Napi::RangeError::New(env, "token id " + std::to_string(tokens.Data()[i]) + " is out of range");
    }
    std::string text(tokens.ElementLength() * 8 + 16, '\0');
    int32_t n = llama_detokenize(vocab_, tokens.Data(), tokens.ElementLength(), text.data(), text.size(), false, renderSpecial);
    if (n < 0) {
        text.resize(-n);
        n = llama_detokenize(vocab_, tokens.Data(), tokens.ElementLength(), text.data(), text.size(), false, renderSpecial);
    }
    if (n < 0) throw Napi::Error::New(env, "detokenization failed");
    text.resize(n);
    return Napi::String::New(env, text);
}

// tokenBytes(token, renderSpecial) -> Buffer. Raw bytes, since one UTF-8 character may span several tokens.
Napi::Value Model::TokenBytes(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    live(env);
    llama_token token = info[0].ToNumber().Int32Value();
    bool renderSpecial = info[1].ToBoolean().Value();
    if (token < 0 || token >= llama_vocab_n_tokens(vocab_)) throw Napi::RangeError::New(env, "token id out of range");
    char buf[256];
    int32_t n = llama_token_to_piece(vocab_, token, buf, sizeof(buf), 0, renderSpecial);
    if (n < 0) throw Napi::Error::New(env, "token piece too long");
    return Napi::Buffer<char>::Copy(env, buf, n);
}

Napi::Value Model::IsEog(const Napi::CallbackInfo & info) {
    live(info.Env());
    return Napi::Boolean::New(info.Env(), llama_vocab_is_eog(vocab_, info[0].ToNumber().Int32Value()));
}

Napi::Value Model::Dispose(const Napi::CallbackInfo & info) {
    disposeRequested_ = true;
    if (liveContexts_ == 0) free();
    return info.Env().Undefined();
}

}  // namespace cllm
