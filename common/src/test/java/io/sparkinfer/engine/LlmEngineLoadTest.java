package io.sparkinfer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** A load says where its time went: each phase in order, adding up to the whole load. */
class LlmEngineLoadTest {

  @Test
  void theLoadPhasesAreNamedInOrderAndAddUpToTheLoad() {
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(Fixtures.demoModel(), Precision.FP32, "cpu"))) {
      String phases = engine.loadPhases();
      assertThat(phases).matches("config and tokenizer \\d+\\.\\d s, weights \\d+\\.\\d s, backend \\d+\\.\\d s, "
          + "generator \\d+\\.\\d s");
      double sum = 0;
      Matcher m = Pattern.compile("(\\d+\\.\\d) s").matcher(phases);
      while (m.find()) {
        sum += Double.parseDouble(m.group(1));
      }
      assertThat(sum).as("the phases cover the load (each rounded to 0.1 s, plus what precedes them)")
          .isCloseTo(engine.loadSeconds(), Offset.offset(0.3));
    }
  }
}
