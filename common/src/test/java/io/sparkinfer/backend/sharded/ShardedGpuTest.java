package io.sparkinfer.backend.sharded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReferenceConformanceTest;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Tensor- and pipeline-parallel replicas on a GPU (every shard on GPU 0 when the machine has one: the split
 * math and the copies between shards run on CUDA all the same): the demo model's last logits match the
 * unsplit model's on the same GPU, and its greedy tokens match transformers'. Skipped without a GPU.
 */
@Tag("gpu")
class ShardedGpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: sharded layouts on CUDA are checked on the GPU machine");
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({"tp=2, FP32, 1e-3", "pp=3, FP32, 1e-3", "'tp=2,pp=2', FP32, 1e-3", "'tp=2,pp=2', FP16, 5e-2"})
  void aSplitReplicaOnTheGpuGivesTheUnsplitLogitsAndTransformersTokens(String layout, Precision precision,
      float tolerance) {
    Path demo = Fixtures.demoModel();
    EngineOptions whole = EngineOptions.of(demo, precision, "gpu").with(EngineOptions.BACKEND,
        io.sparkinfer.engine.BackendKind.EAGER);
    List<Fixtures.Case> cases = Fixtures.reference(demo);
    try (LlmEngine unsplit = LlmEngine.load(whole);
        LlmEngine split = LlmEngine.load(whole.with(EngineOptions.LAYOUT, Layout.parse(layout)))) {
      assertThat(split.devices()).allMatch(d -> d.isGpu());
      float[][] a = Fixtures.lastLogits(unsplit, cases);
      float[][] b = Fixtures.lastLogits(split, cases);
      for (int i = 0; i < cases.size(); i++) {
        assertThat(ReferenceConformanceTest.maxAbsDiff(a[i], b[i])).as("%s %s: prompt %d's last logits", layout,
            precision, i).isLessThan(tolerance);
      }
      if (precision == Precision.FP32) {
        for (Fixtures.Case c : cases) {
          long[] ids = split.generate(List.of(io.sparkinfer.generate.GenerationRequest.greedy("r", c.prompt(),
              c.greedyIds().length)), 1).get(0).outputTokenIds();
          assertThat(ids).as("%s: %s", layout, c.prompt()).containsExactly(c.greedyIds());
        }
      }
    }
  }
}
