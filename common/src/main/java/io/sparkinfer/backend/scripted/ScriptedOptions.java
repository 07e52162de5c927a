package io.sparkinfer.backend.scripted;

import io.sparkinfer.options.Option;
import java.util.List;

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
  public static final List<Option<?>> ALL = List.of(CUDA_GRAPHS, FLASH_DECODE, PACKED_PREFILL, TORCHSCRIPT_OPTIMIZE, GRAPH_TIMING);

  private ScriptedOptions() {}
}
