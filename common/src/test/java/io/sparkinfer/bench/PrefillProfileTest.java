package io.sparkinfer.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PrefillProfile reads its prompts and sums a profiler trace: by op name, its span and the time ops cover. */
class PrefillProfileTest {

  @TempDir
  Path dir;

  @Test
  void completeEventsAreSummedByNameWithTheSpanAndTheTimeTheyCover() throws Exception {
    // ops at 0-1000 us (mm, with a nested copy_ 200-400), 1500-2000 (mm), 2100-2500 (add_); a flow event is no op
    Path file = Files.writeString(dir.resolve("trace.json"), """
        [{"name": "aten::mm", "ph": "X", "ts": 0, "dur": 1000, "tid": 1, "pid": "CPU Functions"},
         {"name": "aten::copy_", "ph": "X", "ts": 200, "dur": 200, "tid": 1, "pid": "CPU Functions"},
         {"name": "aten::mm", "ph": "X", "ts": 1500, "dur": 500, "tid": 1, "pid": "CPU Functions"},
         {"name": "aten::add_", "ph": "X", "ts": 2100, "dur": 400, "tid": 1, "pid": "CPU Functions"},
         {"name": "flow", "ph": "s", "ts": 9000, "tid": 1, "pid": "CPU Functions"}]
        """);
    PrefillProfile.Trace trace = PrefillProfile.Trace.read(file);
    assertThat(trace.byName()).containsOnlyKeys("aten::mm", "aten::copy_", "aten::add_");
    assertThat(trace.byName().get("aten::mm")).containsExactly(1.5, 2.0);
    assertThat(trace.byName().get("aten::add_")).containsExactly(0.4, 1.0);
    assertThat(trace.spanMs()).isCloseTo(2.5, Offset.offset(1e-9));
    assertThat(trace.coveredMs()).as("0-1000, 1500-2000 and 2100-2500").isCloseTo(1.9, Offset.offset(1e-9));
    assertThat(trace.byParent()).containsOnlyKeys("- > aten::mm", "aten::mm > aten::copy_", "- > aten::add_");
    assertThat(trace.byParent().get("aten::mm > aten::copy_")).containsExactly(0.2, 1.0);
    assertThat(trace.byParent().get("- > aten::mm")).containsExactly(1.5, 2.0);
  }

  /**
   * The engine's options: model, precision and the GPU from the positional arguments, more engine options after them,
   * or from their environment variables (a profile on another cuBLAS: {@code --cublas DIR} or {@code SPARKINFER_CUBLAS},
   * which the tool read neither of before).
   */
  @Test
  void engineOptionsFollowThePositionalArgumentsOrComeFromTheEnvironment() {
    String[] positional = {"/models/m", "p.jsonl", "fp8", "16", "out.json"};
    io.sparkinfer.engine.EngineOptions plain = PrefillProfile.options(positional, key -> null);
    assertThat(plain.modelDir()).isEqualTo("/models/m");
    assertThat(plain.precision()).isEqualTo(io.sparkinfer.model.Precision.FP8);
    assertThat(plain.get(io.sparkinfer.engine.EngineOptions.DEVICE_OPTION)).isEqualTo("gpu");
    assertThat(plain.get(io.sparkinfer.cuda.CublasOverride.CUBLAS)).isEqualTo("bundled");

    String[] more = {"/models/m", "p.jsonl", "fp16", "16", "out.json", "--cublas", "/opt/cublas", "--cuda-graphs=false"};
    io.sparkinfer.engine.EngineOptions given = PrefillProfile.options(more, key -> null);
    assertThat(given.get(io.sparkinfer.cuda.CublasOverride.CUBLAS)).isEqualTo("/opt/cublas");
    assertThat(given.get(io.sparkinfer.backend.scripted.ScriptedOptions.CUDA_GRAPHS)).isFalse();

    io.sparkinfer.engine.EngineOptions fromEnv = PrefillProfile.options(positional,
        key -> key.equals("SPARKINFER_CUBLAS") ? "/env/cublas" : null);
    assertThat(fromEnv.get(io.sparkinfer.cuda.CublasOverride.CUBLAS)).isEqualTo("/env/cublas");
  }

  @Test
  void promptsAreTheFirstRowsEachMakingOneToken() throws Exception {
    Path jsonl = Files.writeString(dir.resolve("p.jsonl"), """
        {"id": "a", "prompt": "one two"}

        {"id": "b", "prompt": "three"}
        {"id": "c", "prompt": "four"}
        """);
    List<io.sparkinfer.generate.GenerationRequest> requests = PrefillProfile.prompts(jsonl, 2);
    assertThat(requests).extracting(io.sparkinfer.generate.GenerationRequest::prompt).containsExactly("one two", "three");
    assertThat(requests).allSatisfy(r -> assertThat(r.maxNewTokens()).isEqualTo(1));
  }
}
