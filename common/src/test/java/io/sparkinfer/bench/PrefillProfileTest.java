package io.sparkinfer.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PrefillProfile reads its prompts and sums a trace's CUDA events by name, leaving CPU events out. */
class PrefillProfileTest {

  @TempDir
  Path dir;

  @Test
  void cudaEventsAreSummedByNameAndCpuEventsLeftOut() throws Exception {
    Path trace = Files.writeString(dir.resolve("trace.json"), """
        [{"name": "aten::mm", "ph": "X", "ts": 1, "dur": 500, "tid": 1, "pid": "CPU functions"},
         {"name": "aten::mm", "ph": "X", "ts": 1, "dur": 1500, "tid": "stream 7", "pid": "CUDA functions"},
         {"name": "aten::mm", "ph": "X", "ts": 9, "dur": 500, "tid": "stream 7", "pid": "CUDA functions"},
         {"name": "aten::add_", "ph": "X", "ts": 9, "dur": 250, "tid": "stream 7", "pid": "CUDA functions"},
         {"name": "flow", "ph": "s", "ts": 9, "tid": 1, "pid": "CPU functions"}]
        """);
    Map<String, double[]> sums = PrefillProfile.cudaMillisByName(trace);
    assertThat(sums).containsOnlyKeys("aten::mm", "aten::add_");
    assertThat(sums.get("aten::mm")).containsExactly(2.0, 2.0);
    assertThat(sums.get("aten::add_")).containsExactly(0.25, 1.0);
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
