package io.sparkinfer.backend.scripted;

import io.sparkinfer.options.Option;
import java.util.List;
import java.util.Locale;

/** The engine options of the scripted backend (read by {@link ScriptedCausalLm}; listed in the engine's table). */
public final class ScriptedOptions {

  public static final Option<Boolean> CUDA_GRAPHS = Option.flag("cuda-graphs", true,
      "scripted backend on a GPU: decode steps replay as CUDA graphs (=false: one TorchScript call per step)");

  public static final Option<Boolean> FLASH_DECODE = Option.flag("flash-decode", true,
      "decode steps of the TorchScript step in fp16/bf16 on a GPU read each row's written slots with flash "
          + "attention (=false: SDPA over the slots up to the longest row, masked)");

  public static final Option<Boolean> PACKED_PREFILL = Option.flag("packed-prefill", true,
      "scripted backend: prefill runs a group's prompts as one line without padding, in fp16/bf16 on a GPU through "
          + "variable-length flash attention (=false: a row per prompt, padded to the longest, masked SDPA)");

  /** What the KV cache holds keys and values in ({@link #KV_CACHE_DTYPE}). */
  public enum KvCacheDtype {
    /** The model's compute dtype (float32, float16 or bfloat16). */
    MODEL,
    /**
     * float8 e4m3, one byte a value: each key and value rounded to e4m3 and saturated at +-448, with no scale, as it
     * is written; widened back to the compute dtype as attention reads it.
     */
    FP8;

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * auto (null) is fp8 under {@code --precision fp8} where our kernels read a float8 cache, else the model's dtype
   * ({@link ScriptedCausalLm}).
   */
  public static final Option<KvCacheDtype> KV_CACHE_DTYPE = Option.choice("kv-cache-dtype", null, true,
      KvCacheDtype::label, "what the KV cache holds: model (the compute dtype) or fp8 (float8 e4m3, one byte a value: "
          + "half of fp16's memory and reads; values rounded to e4m3, saturated at 448, no scale; scripted backend on "
          + "one device, fast where our fused kernels read it, on GPUs of compute capability 8.9+, elsewhere widened "
          + "whole each step); auto: fp8 under --precision fp8 where our kernels read it, else model",
      KvCacheDtype.values());

  /**
   * Off by default: the profiling executor recompiles when shapes change, so with it decode steps read the
   * cache's whole capacity (masked) to keep one shape per batch.
   */
  public static final Option<Boolean> TORCHSCRIPT_OPTIMIZE = Option.flag("torchscript-optimize", false,
      "let TorchScript's profiling executor fuse the TorchScript step with NVRTC; decode steps then read the "
          + "cache's whole capacity").diagnostic();

  public static final Option<Boolean> GRAPH_TIMING = Option.flag("graph-timing", false,
      "replay each new decode graph back to back and log its GPU time per replay (logger "
          + "io.sparkinfer.backend.scripted.DecodeGraphs at info)").diagnostic();

  /** Every option of this class, as the engine's table lists them. */
  public static final List<Option<?>> ALL = List.of(CUDA_GRAPHS, FLASH_DECODE, PACKED_PREFILL, KV_CACHE_DTYPE,
      TORCHSCRIPT_OPTIMIZE, GRAPH_TIMING);

  private ScriptedOptions() {}
}
