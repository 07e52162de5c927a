package io.sparkinfer.model;

import ai.djl.ndarray.NDArray;

/**
 * The weights of one decoder layer, named as in Hugging Face's {@code modeling_llama.py}.
 *
 * @param inputLayernorm (H)
 * @param qProj (N*D, H) and bias (N*D) for Qwen2
 * @param kProj (K*D, H)
 * @param vProj (K*D, H)
 * @param oProj (H, N*D)
 * @param postAttentionLayernorm (H)
 * @param gateProj (I, H)
 * @param upProj (I, H)
 * @param downProj (H, I)
 * @param qkvProj q, k and v stacked: (N*D + 2*K*D, H); qProj, kProj and vProj are views of its rows
 * @param gateUpProj gate and up stacked: (2*I, H); gateProj and upProj are views of its rows
 */
public record LayerWeights(
    NDArray inputLayernorm,
    Linear qProj,
    Linear kProj,
    Linear vProj,
    Linear oProj,
    NDArray postAttentionLayernorm,
    Linear gateProj,
    Linear upProj,
    Linear downProj,
    Linear qkvProj,
    Linear gateUpProj) {}
