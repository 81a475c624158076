// cllm-chat-template MODEL.gguf < {"messages": [{"role", "content"}...], "addAssistant": bool}
//
// Renders a model's chat template in a process of its own, under limits on memory, CPU time and stack: a
// template comes with the model file, and a hostile one (endless loops, a string doubled 40 times, deep
// nesting) must not take cllm down with it. Loads the vocabulary only. Prints the prompt and exits 0, or
// prints one line saying why not and exits 1 (3: out of memory).
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <new>
#include <string>

#include "chat.h"
#include "llama.h"
#include "log.h"
#include "nlohmann/json.hpp"

// llama.cpp's Jinja engine wraps a failed allocation in its own error text, which would hide why the
// template failed: noted here as it happens, so that any failure after it is reported as out of memory.
static bool outOfMemory = false;

static int failed(const std::string & why) {
    if (outOfMemory) {
        std::puts("out of memory");
        return 3;
    }
    std::puts(why.c_str());
    return 1;
}

static void limit(int resource, rlim_t value) {
    struct rlimit r = {value, value};
    setrlimit(resource, &r);
}

int main(int argc, char ** argv) {
    if (argc != 2) {
        std::puts("usage: cllm-chat-template MODEL.gguf < request.json");
        return 1;
    }
    const long memoryMb = std::getenv("CLLM_TEMPLATE_MEMORY_MB") ? std::atol(std::getenv("CLLM_TEMPLATE_MEMORY_MB")) : 256;
    limit(RLIMIT_AS, static_cast<rlim_t>(memoryMb) << 20);
    limit(RLIMIT_CPU, 1);
    std::set_new_handler([] {
        outOfMemory = true;
        throw std::bad_alloc();
    });
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    // The common library logs a template's parse error (and throws only a sliced std::exception) from a
    // thread of its own: flushed at exit, so that cllm can read what is wrong.
    std::atexit([] { common_log_flush(common_log_main()); });
    try {
        nlohmann::json request = nlohmann::json::parse(std::string(std::istreambuf_iterator<char>(std::cin), {}));
        llama_model_params params = llama_model_default_params();
        params.vocab_only = true;
        llama_model * model = llama_model_load_from_file(argv[1], params);
        if (!model) return failed("the model's vocabulary could not be loaded");
        common_chat_templates_inputs inputs;
        inputs.add_generation_prompt = request.value("addAssistant", true);
        for (const auto & m : request.at("messages")) {
            common_chat_msg msg;
            msg.role = m.at("role").get<std::string>();
            msg.content = m.at("content").get<std::string>();
            inputs.messages.push_back(std::move(msg));
        }
        // Jinja first (llama.cpp's common library), then the built-in list of known templates.
        std::string firstError;
        auto templates = common_chat_templates_init(model, "");
        for (bool jinja : {true, false}) {
            try {
                inputs.use_jinja = jinja;
                std::string prompt = common_chat_templates_apply(templates.get(), inputs).prompt;
                std::fwrite(prompt.data(), 1, prompt.size(), stdout);
                return 0;
            } catch (const std::exception & e) {
                if (firstError.empty()) firstError = e.what();
            }
        }
        return failed(firstError);
    } catch (const std::exception & e) {
        return failed(e.what());
    }
}
