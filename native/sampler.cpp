// Sampling that Jacobi decoding reproduces exactly. The token at position p is
//
//     argmax over v of  logit'[v] + T * G(seed, p, v)
//
// where logit' are the logits after llama.cpp's penalties, top-k, top-p and min-p, and G is Gumbel noise
// from a stateless hash of (seed, p, v). The argmax of Gumbel-perturbed logits is an exact sample from
// softmax(logit' / T) (the Gumbel-max trick). Because the noise depends on the position and not on when or
// in what batch the position is scored, a draft token that saw the right tokens before it samples exactly
// what one-by-one decoding samples there, and Jacobi's fixed point is the autoregressive sample.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cllm {

namespace {

// Gumbel noise lies in [-3.6, 36.8] for the 52-bit uniforms below: a token further below the best logit
// than T * kGumbelSpan can never win the race.
constexpr double kGumbelSpan = 41;
// A token this many nats below the best has a weight of e^-40 (4e-18): dropping it from top-p's sum changes
// no cut in practice, and saves looking at the tail of a large vocabulary.
constexpr double kNegligibleNats = 40;
constexpr size_t kTopPChunk = 32;

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// The best token and its lead over the runner-up: greedy decoding, one pass over the vocabulary.
Choice top2(const float * logits, int32_t nVocab) {
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

// The Gumbel noise of (seed, position, token): -log(-log(u)) for a uniform u from a stateless hash.
double gumbelNoise(uint64_t seed, int64_t position, llama_token token) {
    uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(position)) ^ static_cast<uint32_t>(token));
    double u = (static_cast<double>(h >> 12) + 0.5) * 0x1p-52;  // in (0, 1), never 0 or 1
    return -std::log(-std::log(u));
}

}  // namespace

void Sampler::penalize(const SamplingParams & params, float * logits, const std::vector<llama_token> & recent) {
    distinct_.clear();
    for (llama_token t : recent) {
        if (counts_[t]++ == 0) distinct_.push_back(t);
    }
    for (llama_token t : distinct_) {
        float & logit = logits[t];
        // Dividing a negative logit would raise it: llama.cpp multiplies those instead.
        logit = logit <= 0 ? logit * params.repeatPenalty : logit / params.repeatPenalty;
        logit -= counts_[t] * params.frequencyPenalty + params.presencePenalty;
        counts_[t] = 0;
    }
}

Choice Sampler::choose(const SamplingParams & params, const float * logits, int32_t nVocab, int64_t position) {
    Choice best = top2(logits, nVocab);
    const float maxLogit = logits[best.token];
    if (params.temperature <= 0 || !std::isfinite(maxLogit)) return best;
    const double temperature = params.temperature;

    // Only tokens that can still matter, then llama.cpp's truncations in its order: top-k, top-p, min-p.
    const double reach = temperature * kGumbelSpan;
    const double floor = maxLogit - (params.topP < 1 ? std::max(reach, kNegligibleNats) : reach);
    candidates_.clear();
    for (int32_t t = 0; t < nVocab; t++) {
        if (logits[t] >= floor) candidates_.emplace_back(logits[t], t);
    }
    auto before = [](const std::pair<float, llama_token> & a, const std::pair<float, llama_token> & b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    if (params.topK > 0 && candidates_.size() > static_cast<size_t>(params.topK)) {
        std::nth_element(candidates_.begin(), candidates_.begin() + (params.topK - 1), candidates_.end(), before);
        candidates_.resize(params.topK);
    }
    if (params.topP < 1) {
        double total = 0;
        for (const auto & c : candidates_) total += std::exp(static_cast<double>(c.first) - maxLogit);
        // Sorted a chunk at a time: the likeliest few tokens usually reach p, and the rest stay unsorted.
        double cumulative = 0;
        size_t keep = 0;
        size_t sorted = 0;
        while (keep < candidates_.size() && cumulative < params.topP) {
            if (keep == sorted) {
                sorted = std::min(candidates_.size(), sorted + kTopPChunk);
                std::partial_sort(candidates_.begin() + keep, candidates_.begin() + sorted, candidates_.end(), before);
            }
            cumulative += std::exp(static_cast<double>(candidates_[keep++].first) - maxLogit) / total;
        }
        candidates_.resize(keep);
    }
    if (params.minP > 0) {
        const float minLogit = maxLogit + std::log(params.minP);
        candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(), [&](const auto & c) { return c.first < minLogit; }), candidates_.end());
    }

    double first = -std::numeric_limits<double>::infinity();
    double second = first;
    for (const auto & [logit, token] : candidates_) {
        double score = logit + temperature * gumbelNoise(params.seed, position, token);
        if (score > first) {
            second = first;
            first = score;
            best.token = token;
        } else if (score > second) {
            second = score;
        }
    }
    best.margin = static_cast<float>(first - second);
    return best;
}

}  // namespace cllm
