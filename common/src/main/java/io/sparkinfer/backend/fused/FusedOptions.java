package io.sparkinfer.backend.fused;

import io.sparkinfer.options.Option;
import java.util.List;
import java.util.Locale;

/**
 * The engine options of fused decode and prefill steps (read by {@link FusedDecode} and the scripted backend; listed
 * in the engine's table).
 */
public final class FusedOptions {

  /** Attention in a fused decode step. */
  public enum Attention {
    /**
     * Our split-key kernels: {@code decode_attention} where the model's shape allows it (groups of up to 16
     * query heads, head dims up to 128 and a multiple of 16), else {@code decode_attention_wide}.
     */
    KERNELS,
    /** {@code decode_attention_wide} whatever the shape (it takes any; for checks and comparisons). */
    WIDE,
    /** PyTorch's variable-length flash attention, as the TorchScript step runs it. */
    FLASH;

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public static final Option<Boolean> FUSED_KERNELS = Option.flag("fused-kernels", true,
      "fp16/bf16 decode steps captured in CUDA graphs run our fused CUDA kernels between PyTorch matmuls "
          + "(=false: the TorchScript step)");

  public static final Option<Attention> FUSED_ATTENTION = Option.choice("fused-attention", Attention.KERNELS, false,
      Attention::label, "attention of fused decode steps: kernels (ours; decode_attention where the shape allows, "
          + "else decode_attention_wide), wide (decode_attention_wide always), flash (PyTorch's flash attention)",
      Attention.values());

  /**
   * About one block per SM of an H100 (each keeps its 4 warps' loads in flight), so from 64 rows of 2
   * key/value heads on each row is one split and the kernel writes the output itself (measured fastest at
   * batch 64 and 256 with {@code bench/fused_step.py}).
   */
  public static final Option<Integer> FUSED_ATTENTION_BLOCKS = Option.integer("fused-attention-blocks", "N", 128,
      "blocks decode_attention aims for over a batch: rows split their keys until there are about this many")
      .atLeast(1);

  public static final Option<Boolean> FUSED_PREFILL = Option.flag("fused-prefill", true,
      "packed prefill steps run the fused kernels (RMSNorm, rotary embedding with the cache write, SiLU gate) between "
          + "their PyTorch matmuls and flash attention, where decode steps are fused (=false: the TorchScript step)");

  /** Where compiled kernels are kept between processes ({@link io.sparkinfer.cuda.CubinCache}). */
  public static final Option<String> KERNEL_CACHE = Option.text("kernel-cache", "DIR|auto|none", "auto",
      "where our CUDA kernels, compiled with NVRTC at the first load on a machine (about 3 s), are kept for later loads: "
          + "auto: $XDG_CACHE_HOME/sparkinfer/kernels, else ~/.cache/sparkinfer/kernels; none: compile at every load")
      .validate(s -> !s.isBlank(), "auto, none or a directory");

  /** Every option of this class, as the engine's table lists them. */
  public static final List<Option<?>> ALL = List.of(FUSED_KERNELS, FUSED_ATTENTION, FUSED_ATTENTION_BLOCKS,
      FUSED_PREFILL, KERNEL_CACHE);

  private FusedOptions() {}
}
