package io.sparkinfer.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.torchscript.ScriptedTensors;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The four projections' matrix multiplications of a model, alone, in libtorch as the engine runs them: fp16 and bf16
 * {@code torch.mm} against float8 e4m3 {@code torch._scaled_mm}, with row-wise scales ({@code --precision fp8}'s,
 * with and without fast accumulation) and with tensor-wise scales, at each row count given (decode batches, prefill
 * lines). Prints one JSON line per shape and kind: the time per product, its FLOP rate and the fraction of the GPU's
 * dense fp16 peak (given, e.g. 989 TFLOP/s for an H100 or H200), and the float8 product's largest difference from
 * the fp16 one relative to the fp16 product's largest magnitude.
 *
 * <p>Timing: every product is used (its first element goes into a float32 sum that is read at the end), no two
 * products in one timing are the same (copies of the weight, enough to exceed the L2 cache), and one timing does
 * about 20 TFLOP. See {@code matmul_bench.py}. Each product also costs the loop's host time (about 30-50 us on an H200
 * host): rows under a few thousand measure that, not the GPU (decode shapes: {@code bench/gemm_shapes.py}, in CUDA
 * graphs).
 *
 * <pre>
 *   java -cp ENGINE_CP io.sparkinfer.bench.MatmulBench MODEL_DIR [ROWS,ROWS...] [PEAK_TFLOPS]   (on a GPU)
 * </pre>
 */
public final class MatmulBench {

  static final String SOURCE = "/io/sparkinfer/bench/matmul_bench.py";
  static final String[] KINDS = {"mm", "fp8_rowwise_fast_accum", "fp8_rowwise", "fp8_tensorwise_fast_accum",
      "fp8_tensorwise_fp16_out"};
  /** Weight bytes per timing's copies, beyond an H100's or H200's 50 MB L2. */
  static final long COPY_BYTES = 200L << 20;

  private MatmulBench() {}

  public static void main(String[] args) {
    if (args.length < 1) {
      System.err.println("usage: MatmulBench MODEL_DIR [ROWS,ROWS...] [PEAK_TFLOPS]");
      System.exit(2);
    }
    ModelConfig c = ModelConfig.load(Path.of(args[0]));
    String[] rows = (args.length > 1 ? args[1] : "256,1024,32768").split(",");
    double peak = args.length > 2 ? Double.parseDouble(args[2]) : 989;
    int qkv = (c.numAttentionHeads() + 2 * c.numKeyValueHeads()) * c.headDim();
    int[][] projections = { // {out, in}: q/k/v, o, gate/up, down
      {qkv, c.hiddenSize()}, {c.hiddenSize(), c.numAttentionHeads() * c.headDim()},
      {2 * c.intermediateSize(), c.hiddenSize()}, {c.hiddenSize(), c.intermediateSize()}};
    String[] names = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
    try (PtNDManager m = (PtNDManager) NDManager.newBaseManager(Device.gpu())) {
      JniUtils.setGraphExecutorOptimize(false); // the ops as written, as the fused steps run them (engine loaded)
      PtSymbolBlock bench = TorchScriptArchive.load(m, "MatmulBench", SOURCE);
      for (String r : rows) {
        int mRows = Integer.parseInt(r.trim());
        for (int p = 0; p < projections.length; p++) {
          try (NDManager scope = m.newSubManager()) {
            measure(bench, scope, names[p], mRows, projections[p][0], projections[p][1], peak);
          }
        }
      }
    }
  }

  private static void measure(PtSymbolBlock bench, NDManager scope, String name, int mRows, int n, int k,
      double peak) {
    int copies = (int) Math.max(2, (COPY_BYTES + 2L * n * k - 1) / (2L * n * k));
    NDArray a = scope.randomNormal(new Shape(mRows, k), DataType.FLOAT16); // (M, K)
    List<NDArray> w16 = new ArrayList<>();
    for (int i = 0; i < copies; i++) {
      w16.add(scope.randomNormal(new Shape(n, k), DataType.FLOAT16).div(Math.sqrt(k))); // (N, K)
    }
    NDArray[] aRows = ScriptedTensors.quantizeFp8Rows(a, scope); // (M, K) float8, (1, M)
    NDArray[] aTensor = ScriptedTensors.quantizeFp8Tensor(a, scope); // (M, K) float8, (1, 1)
    List<NDArray> wRows = new ArrayList<>();
    List<NDArray> wRowScales = new ArrayList<>();
    List<NDArray> wTensor = new ArrayList<>();
    List<NDArray> wTensorScales = new ArrayList<>();
    for (NDArray w : w16) {
      NDArray[] q = ScriptedTensors.quantizeFp8Rows(w, scope); // (N, K), (1, N)
      wRows.add(q[0]);
      wRowScales.add(q[1]);
      NDArray[] t = ScriptedTensors.quantizeFp8Tensor(w, scope); // (N, K), (1, 1)
      wTensor.add(t[0]);
      wTensorScales.add(t[1]);
    }
    double flop = 2.0 * mRows * n * k;
    int reps = (int) Math.max(2, Math.min(1000, 2e13 / flop / copies));
    float fp16Sum = Float.NaN;
    for (int kind = 0; kind < KINDS.length; kind++) {
      boolean rowwise = kind == 1 || kind == 2;
      NDArray left = kind == 0 ? a : rowwise ? aRows[0] : aTensor[0];
      NDArray aScale = kind == 0 ? aTensor[1] : rowwise ? aRows[1].reshape(mRows, 1) : aTensor[1]; // (M, 1) or (1, 1)
      List<NDArray> right = kind == 0 ? w16 : rowwise ? wRows : wTensor;
      List<NDArray> scales = kind == 0 ? wTensorScales : rowwise ? wRowScales : wTensorScales;
      float first;
      try {
        first = run(bench, left, right, aScale, scales, 1, kind); // warm-up, and the sum of first elements
        long start = System.nanoTime();
        run(bench, left, right, aScale, scales, reps, kind);
        double ms = (System.nanoTime() - start) / 1e6 / reps / copies;
        double tflops = flop / ms / 1e9;
        if (kind == 0) {
          fp16Sum = first;
        }
        System.out.printf(Locale.ROOT, "{\"projection\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"kind\": \"%s\", "
            + "\"copies\": %d, \"reps\": %d, \"ms\": %.4f, \"tflops\": %.1f, \"fraction_of_fp16_peak\": %.3f, "
            + "\"sum_of_first_elements\": %.4f, \"fp16_sum\": %.4f}%n", name, mRows, n, k, KINDS[kind], copies, reps,
            ms, tflops, tflops / peak, first, fp16Sum);
      } catch (RuntimeException e) {
        System.out.printf(Locale.ROOT, "{\"projection\": \"%s\", \"m\": %d, \"kind\": \"%s\", \"error\": \"%s\"}%n",
            name, mRows, KINDS[kind], String.valueOf(e.getMessage()).lines().findFirst().orElse("")
                .replace("\"", "'"));
      }
    }
  }

  /** One call: {@code reps} rounds of a product by every copy; returns the float32 sum of their first elements. */
  static float run(PtSymbolBlock bench, NDArray a, List<NDArray> ws, NDArray aScale, List<NDArray> wScales,
      int reps, int kind) {
    List<IValue> args = new ArrayList<>();
    try {
      args.add(IValue.from((PtNDArray) a));
      args.add(IValue.listFrom(ws.stream().map(w -> (PtNDArray) w).toArray(PtNDArray[]::new)));
      args.add(IValue.from((PtNDArray) aScale));
      args.add(IValue.listFrom(wScales.stream().map(w -> (PtNDArray) w).toArray(PtNDArray[]::new)));
      args.add(IValue.from((long) reps));
      args.add(IValue.from((long) kind));
      try (IValue out = bench.forward(args.toArray(new IValue[0]));
          NDManager read = a.getManager().newSubManager()) {
        return out.toTensor((PtNDManager) read).toFloatArray()[0]; // waits for every product
      }
    } finally {
      args.forEach(IValue::close);
    }
  }
}
