package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.LayerParameter;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code --precision fp8} on the CPU, where the float8 matmuls run emulated in float32 over the same quantized values
 * the GPU multiplies: weights quantized per output channel within e4m3's precision, the four projections of every
 * layer quantized and nothing else, transformers' first token for every prompt of the demo model, and clear errors
 * where fp8 cannot run. The GPU path (torch._scaled_mm, fused steps): {@code Fp8GpuTest}.
 */
class Fp8Test {

  @Test
  void precisionParsesAndComputesInBf16WithFloat8Projections() {
    assertThat(Precision.parse("FP8")).isEqualTo(Precision.FP8);
    assertThat(Precision.FP8.dataType()).isEqualTo(DataType.BFLOAT16);
    assertThat(Precision.FP8.isBf16()).isTrue();
    assertThat(Precision.FP8.fp8Projections()).isTrue();
    assertThat(Precision.BF16.fp8Projections()).isFalse();
    assertThatThrownBy(() -> Precision.parse("int4")).hasMessageContaining("fp8");
  }

  @Test
  void weightsAreQuantizedPerOutputChannelWithinE4m3Precision() {
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      // rows of very different magnitudes: each gets its own scale
      NDArray w = m.randomNormal(new Shape(32, 48)).mul(m.create(new float[] {1e-3f, 1f, 300f, 0.05f}).repeat(8)
          .reshape(32, 1));
      NDArray[] q = ScriptedTensors.quantizeFp8Rows(w, m);
      NDArray scale = q[1];
      assertThat(q[0].getShape()).isEqualTo(new Shape(32, 48));
      assertThat(scale.getShape()).as("(1, out)").isEqualTo(new Shape(1, 32));
      assertThat(scale.getDataType()).isEqualTo(DataType.FLOAT32);
      float[] rowMax = w.abs().max(new int[] {1}).toFloatArray();
      float[] s = scale.toFloatArray();
      for (int r = 0; r < 32; r++) {
        assertThat(s[r]).as("row %d: max|w| / 448", r).isCloseTo(rowMax[r] / 448f, org.assertj.core.data.Percentage.withPercentage(1e-4));
      }
      NDArray dequantized = ScriptedTensors.cast(q[0], DataType.FLOAT32).mul(scale.transpose());
      // e4m3 keeps 3 mantissa bits: a relative error of at most 1/16 of the value (normal range), plus a bound for
      // the values that land in its subnormals (below 2^-6 of the scale)
      NDArray bound = w.abs().div(16f).add(scale.transpose().mul((float) Math.pow(2, -9)));
      assertThat(dequantized.sub(w).abs().sub(bound).max().getFloat()).as("within e4m3's rounding").isLessThanOrEqualTo(0f);
    }
  }

  @Test
  void aTensorIsQuantizedWithOneScaleFromItsLargestMagnitude() {
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      NDArray w = m.randomNormal(new Shape(16, 24)).mul(3f);
      NDArray[] q = ScriptedTensors.quantizeFp8Tensor(w, m);
      assertThat(q[0].getShape()).isEqualTo(new Shape(16, 24));
      assertThat(q[1].getShape()).as("(1, 1)").isEqualTo(new Shape(1, 1));
      float scale = q[1].getFloat(0, 0);
      assertThat(scale).isCloseTo(w.abs().max().getFloat() / 448f, org.assertj.core.data.Percentage.withPercentage(1e-4));
      NDArray dequantized = ScriptedTensors.cast(q[0], DataType.FLOAT32).mul(scale);
      NDArray bound = w.abs().div(16f).add(scale * (float) Math.pow(2, -9));
      assertThat(dequantized.sub(w).abs().sub(bound).max().getFloat()).as("within e4m3's rounding").isLessThanOrEqualTo(0f);
    }
  }

  @Test
  void theFourProjectionsOfEveryLayerAreQuantizedAndNothingElse() {
    EngineOptions options = EngineOptions.of(Fixtures.demoModel(), Precision.FP8, "cpu");
    try (LlmEngine engine = LlmEngine.load(options); NDManager m = NDManager.newBaseManager(Device.cpu())) {
      assertThat(engine.newGenerator().backend()).isInstanceOf(ScriptedCausalLm.class);
      Map<String, NDArray> params = engine.weights().stepParameters();
      int layers = engine.config().numHiddenLayers();
      Map<String, NDArray> fp8 = Fp8Projections.of(params, layers, m);
      assertThat(fp8).hasSize(params.size() + 4 * layers);
      for (Map.Entry<String, NDArray> e : params.entrySet()) {
        boolean projection = Fp8Projections.WEIGHTS.stream()
            .anyMatch(p -> java.util.stream.IntStream.range(0, layers).anyMatch(i -> p.key(i).equals(e.getKey())));
        assertThat(fp8.get(e.getKey()) == e.getValue()).as(e.getKey()).isEqualTo(!projection);
      }
      for (int i = 0; i < layers; i++) {
        for (LayerParameter p : Fp8Projections.WEIGHTS) {
          assertThat(fp8.get(p.scaleKey(i)).getShape().get(1)).as(p.scaleKey(i))
              .isEqualTo(params.get(p.key(i)).getShape().get(0));
        }
      }
    }
  }

  @Test
  void projectionsWhoseSizesAreNotMultiplesOf16AreRefusedBeforeAnyIsQuantized() {
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      Map<String, NDArray> params = new LinkedHashMap<>();
      for (LayerParameter p : Fp8Projections.WEIGHTS) {
        params.put(p.key(0), m.zeros(new Shape(32, 32)));
      }
      params.put(LayerParameter.O_PROJ_WEIGHT.key(0), m.zeros(new Shape(32, 40)));
      assertThatThrownBy(() -> Fp8Projections.of(params, 1, m)).isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("multiples of 16").hasMessageContaining("model.layers.0.self_attn.o_proj.weight is 32 x 40");
    }
  }

  /**
   * Greedy generation of the trained demo model in fp8 (emulated on the CPU): every prompt's first token is
   * transformers' (fp32). How far the ids agree with transformers', in fp8 and in bf16, is printed (README's fp8
   * quality figures on the CPU come from this line).
   */
  @Test
  void fp8GenerationGivesTransformersFirstTokens() {
    Map<Precision, Integer> agreed = agreementWithTransformers("cpu", engine -> { });
    assertThat(agreed.get(Precision.FP8)).isPositive();
  }

  /**
   * Generates the demo model's reference prompts greedily in fp8 and bf16 on {@code device}, asserts that every fp8
   * first token is transformers' (fp32), and returns and prints, per precision, how many leading ids agree with
   * transformers' (229 in all). {@code check} sees each engine after it generated.
   */
  static Map<Precision, Integer> agreementWithTransformers(String device, java.util.function.Consumer<LlmEngine> check) {
    Path dir = Fixtures.demoModel();
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = Fixtures.referenceRequests(cases);
    int total = Fixtures.referenceTokens(cases);
    Map<Precision, Integer> agreed = new LinkedHashMap<>();
    for (Precision precision : new Precision[] {Precision.FP8, Precision.BF16}) {
      try (LlmEngine engine = LlmEngine.load(EngineOptions.of(dir, precision, device))) {
        List<Completion> out = engine.generate(requests, 4);
        check.accept(engine);
        if (precision == Precision.FP8) {
          for (int i = 0; i < cases.size(); i++) {
            assertThat(out.get(i).outputTokenIds()[0]).as("first token of %s", cases.get(i).prompt())
                .isEqualTo(cases.get(i).greedyIds()[0]);
          }
        }
        agreed.put(precision, Fixtures.leadingAgreement(out, cases));
      }
    }
    System.out.printf("greedy ids agreeing with transformers fp32 (leading ids of %d prompts, demo model, %s): fp8 %d "
        + "of %d, bf16 %d of %d%n", cases.size(), device, agreed.get(Precision.FP8), total, agreed.get(Precision.BF16),
        total);
    return agreed;
  }

  @Test
  void fp8RunsOnTheScriptedBackendAloneAndUnsplit() {
    Path dir = Fixtures.demoModel();
    EngineOptions fp8 = EngineOptions.of(dir, Precision.FP8, "cpu");
    assertThatThrownBy(() -> LlmEngine.load(fp8.with(EngineOptions.BACKEND, BackendKind.EAGER)))
        .hasMessageContaining("fp8 runs on the scripted backend only");
    assertThatThrownBy(() -> LlmEngine.load(fp8.with(EngineOptions.LAYOUT, Layout.parse("tp=2"))))
        .hasMessageContaining("fp8");
  }
}
