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
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.torchscript.ScriptedTensors;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The four projections' matrix multiplications of a model, alone, in libtorch as the engine runs them: fp16
 * {@code torch.mm} against float8 {@code torch._scaled_mm} with row-wise scales ({@code --precision fp8}), with and
 * without fast accumulation, at a decode batch and a prefill line. Prints one JSON line per shape and kind: the time
 * per product and its FLOP rate against the GPU's dense fp16 peak (given, e.g. 989 for an H200).
 *
 * <pre>
 *   java -cp ENGINE_CP io.sparkinfer.bench.MatmulBench MODEL_DIR [ROWS,ROWS...] [PEAK_TFLOPS]   (on a GPU)
 * </pre>
 */
public final class MatmulBench {

  static final String SOURCE = "/io/sparkinfer/bench/matmul_bench.py";

  private MatmulBench() {}

  public static void main(String[] args) {
    if (args.length < 1) {
      System.err.println("usage: MatmulBench MODEL_DIR [ROWS,ROWS...] [PEAK_TFLOPS]");
      System.exit(2);
    }
    ModelConfig c = ModelConfig.load(Path.of(args[0]));
    String[] rows = (args.length > 1 ? args[1] : "1024,32768").split(",");
    double peak = args.length > 2 ? Double.parseDouble(args[2]) : 989;
    int qkv = (c.numAttentionHeads() + 2 * c.numKeyValueHeads()) * c.headDim();
    int[][] projections = { // {out, in}: q/k/v, o, gate/up, down
      {qkv, c.hiddenSize()}, {c.hiddenSize(), c.numAttentionHeads() * c.headDim()},
      {2 * c.intermediateSize(), c.hiddenSize()}, {c.hiddenSize(), c.intermediateSize()}};
    String[] names = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
    Device gpu = Device.gpu();
    try (PtNDManager m = (PtNDManager) NDManager.newBaseManager(gpu)) {
      PtSymbolBlock bench = TorchScriptArchive.load(m, "MatmulBench", SOURCE);
      for (String r : rows) {
        int mRows = Integer.parseInt(r.trim());
        for (int p = 0; p < projections.length; p++) {
          int n = projections[p][0];
          int k = projections[p][1];
          try (NDManager scope = m.newSubManager()) {
            NDArray a = scope.randomNormal(new Shape(mRows, k), DataType.FLOAT16);
            NDArray w = scope.randomNormal(new Shape(n, k), DataType.FLOAT16).div(Math.sqrt(k));
            NDArray[] aq = ScriptedTensors.quantizeFp8Rows(a, scope); // (M, K), (1, M)
            NDArray[] wq = ScriptedTensors.quantizeFp8Rows(w, scope); // (N, K), (1, N)
            NDArray aScale = aq[1].reshape(mRows, 1);
            double flop = 2.0 * mRows * n * k;
            List<String> kinds = List.of("fp16", "fp8", "fp8_fast_accum");
            for (String kind : kinds) {
              boolean fp8 = !kind.equals("fp16");
              NDArray left = fp8 ? aq[0] : a;
              NDArray right = fp8 ? wq[0] : w;
              int reps = (int) Math.max(5, Math.min(200, 2e13 / flop)); // about 20 TFLOP a timing
              run(bench, left, right, aScale, wq[1], 2, fp8, kind.endsWith("fast_accum")); // warm-up
              long start = System.nanoTime();
              run(bench, left, right, aScale, wq[1], reps, fp8, kind.endsWith("fast_accum"));
              double ms = (System.nanoTime() - start) / 1e6 / reps;
              double tflops = flop / ms / 1e9;
              System.out.printf(Locale.ROOT, "{\"projection\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"kind\": \"%s\", "
                  + "\"ms\": %.4f, \"tflops\": %.1f, \"fraction_of_fp16_peak\": %.3f}%n", names[p], mRows, n, k, kind,
                  ms, tflops, tflops / peak);
            }
          }
        }
      }
    }
  }

  private static void run(PtSymbolBlock bench, NDArray a, NDArray w, NDArray aScale, NDArray wScale, int reps,
      boolean fp8, boolean fastAccum) {
    List<IValue> args = new ArrayList<>();
    try {
      for (NDArray t : new NDArray[] {a, w, aScale, wScale}) {
        args.add(IValue.from((PtNDArray) t));
      }
      args.add(IValue.from((long) reps));
      args.add(IValue.from(fp8));
      args.add(IValue.from(fastAccum));
      try (IValue out = bench.forward(args.toArray(new IValue[0]))) {
        try (NDManager read = a.getManager().newSubManager()) {
          out.toTensor((PtNDManager) read).toFloatArray(); // waits for every product
        }
      }
    } finally {
      args.forEach(IValue::close);
    }
  }
}
