// Exact sampling under Jacobi decoding: a token is a deterministic function of (seed, its position, the
// logits), so that a draft position that saw the right tokens before it samples what one-by-one decoding
// samples there. See sampler.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "llama.h"

namespace cllm {

// llama.cpp's sampling settings and meanings; the defaults here are greedy decoding.
struct SamplingParams {
    float temperature = 0;  // <= 0: greedy
    int32_t topK = 0;       // <= 0: off
    float topP = 1;         // >= 1: off
    float minP = 0;         // <= 0: off
    float repeatPenalty = 1;
    int32_t repeatLastN = 64;  // 0: no penalties
    float presencePenalty = 0;
    float frequencyPenalty = 0;
    uint64_t seed = 0;

    bool penalized() const { return repeatLastN != 0 && (repeatPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0); }
};

struct Choice {
    llama_token token;
    // How far the chosen token's score is ahead of the runner-up's (logit units): a rounding error in the
    // logits smaller than this cannot change the choice.
    float margin;
};

class Sampler {
  public:
    explicit Sampler(int32_t nVocab = 0) : counts_(nVocab, 0) {}

    // The repetition, presence and frequency penalties of llama.cpp, in place, for the tokens `recent`.
    void penalize(const SamplingParams & params, float * logits, const std::vector<llama_token> & recent);

    // The token at `position` (its index in the sequence), from logits already penalized.
    Choice choose(const SamplingParams & params, const float * logits, int32_t nVocab, int64_t position);

  private:
    std::vector<int32_t> counts_;
    std::vector<llama_token> distinct_;
    std::vector<std::pair<float, llama_token>> candidates_;
};

}  // namespace cllm
