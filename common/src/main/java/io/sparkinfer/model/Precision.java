package io.sparkinfer.model;

import ai.djl.ndarray.types.DataType;
import java.util.Locale;

/**
 * The dtype weights, activations and the KV cache are held in. Norms and softmax always run in fp32. bf16
 * tensors are made through {@link io.sparkinfer.torchscript.ScriptedTensors} (DJL cannot create them), and
 * only the scripted backend computes in bf16.
 *
 * <p>{@link #FP8} is bf16 with the decoder layers' four projections (q/k/v, o, gate/up, down) as float8 e4m3
 * matrix multiplications: weights quantized once at load with a scale per output channel, each matmul's input
 * quantized per token (row) with its own scale, products accumulated in float32 and written in bf16
 * ({@link io.sparkinfer.backend.scripted.Fp8Projections}). Embeddings, norms, attention and the LM head stay bf16;
 * the KV cache is float8 by default where our kernels read it ({@code --kv-cache-dtype}), else bf16. Only the scripted backend runs it: on GPUs with float8 tensor cores (compute capability 8.9 and
 * up) through {@code torch._scaled_mm}; elsewhere the same quantization runs emulated in float32.
 *
 * <p>Experimental: on an H200 it runs the 8k workload of {@code bench/gpu/e2e.sh} at 1.388x fp16's throughput with
 * the float8 cache (2026-12-02, {@code bench/results/2026-12-02-e2e-NVIDIA-H200-run20}; the first version, with every
 * input quantized by libtorch passes, ran at 0.50x, {@code run5}). In fused steps the norms and the SiLU gate quantize
 * their rows inside our kernels ({@code rms_norm_fp8}, {@code silu_mul_fp8}, {@code quantize_fp8} for the attention
 * output); the TorchScript step's inputs are quantized by libtorch ops. README, "fp8", states its agreement.
 */
public enum Precision {
  FP32(DataType.FLOAT32),
  FP16(DataType.FLOAT16),
  BF16(DataType.BFLOAT16),
  FP8(DataType.BFLOAT16);

  private final DataType dataType;

  Precision(DataType dataType) {
    this.dataType = dataType;
  }

  /** The dtype tensors are held and computed in (bf16 for {@link #FP8}, whose projections alone are float8). */
  public DataType dataType() {
    return dataType;
  }

  /** Whether tensors are bf16, which only the scripted backend makes and computes in (bf16, fp8). */
  public boolean isBf16() {
    return dataType == DataType.BFLOAT16;
  }

  /** Whether the projections run as float8 matrix multiplications ({@link #FP8}). */
  public boolean fp8Projections() {
    return this == FP8;
  }

  /** The lower-case name used on command lines and in tables: {@code fp32}, {@code fp16}. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code fp32}, {@code fp16}, {@code bf16} or {@code fp8} (any case). */
  public static Precision parse(String s) {
    for (Precision p : values()) {
      if (p.name().equalsIgnoreCase(s)) {
        return p;
      }
    }
    throw new IllegalArgumentException("precision '" + s + "' is not supported (supported: fp32, fp16, bf16, fp8)");
  }
}
