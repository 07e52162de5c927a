package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.cli.GenerateCommand;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.generate.RequestOptions;
import io.sparkinfer.options.OptionTable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * README's option tables are the code's: each block between {@code <!-- options:NAME -->} and
 * {@code <!-- /options:NAME -->} must equal the table generated from the option declarations. When they
 * differ, the test writes README with the generated tables to {@code jobs/target/README.md} (copy it over
 * README.md after reading the diff). And {@code generate.sh --help} and {@code infer.sh --help} list the same
 * engine and generation options with the same defaults.
 */
class ReadmeOptionsTest {

  private static final Path README = Path.of("..", "README.md");

  /** The README blocks and the groups they show. */
  static Map<String, OptionTable.Group> blocks() {
    Map<String, OptionTable.Group> blocks = new LinkedHashMap<>();
    blocks.put("generate.sh", GenerateCommand.OPTIONS.groups().get(0));
    blocks.put("job", JobOptions.JOB_GROUP);
    blocks.put("generation", RequestOptions.GROUP);
    blocks.put("engine", EngineOptions.GROUP);
    blocks.put("sweep", io.sparkinfer.jobs.sweep.SweepOptions.SWEEP_GROUP);
    return blocks;
  }

  @Test
  void readmeOptionTablesAreGeneratedFromTheCode() throws IOException {
    String readme = Files.readString(README, StandardCharsets.UTF_8);
    String regenerated = readme;
    for (Map.Entry<String, OptionTable.Group> b : blocks().entrySet()) {
      String open = "<!-- options:" + b.getKey() + " -->\n";
      String close = "<!-- /options:" + b.getKey() + " -->";
      int start = regenerated.indexOf(open);
      int end = regenerated.indexOf(close);
      assertThat(start).as("README has the block " + open.trim()).isNotNegative();
      assertThat(end).as("README closes the block " + close).isGreaterThan(start);
      regenerated = regenerated.substring(0, start + open.length()) + b.getValue().markdown()
          + regenerated.substring(end);
    }
    if (!regenerated.equals(readme)) {
      Path out = Path.of("target", "README.md");
      Files.createDirectories(out.getParent());
      Files.writeString(out, regenerated, StandardCharsets.UTF_8);
    }
    assertThat(readme).as("README's option tables differ from the code; jobs/target/README.md has them regenerated")
        .isEqualTo(regenerated);
  }

  @Test
  void generateInferAndSweepShowTheSameEngineOptions() {
    String generate = GenerateCommand.OPTIONS.usage(GenerateCommand.SYNOPSIS, GenerateCommand.DESCRIPTION);
    String infer = JobOptions.usage();
    String sweep = io.sparkinfer.jobs.sweep.SweepOptions.usage();
    for (String group : new String[] {"generation options:", "engine options:",
        "engine options, developers' diagnostics:"}) {
      assertThat(section(generate, group)).as(group).isNotEmpty().isEqualTo(section(infer, group));
    }
    for (String group : new String[] {"engine options:", "engine options, developers' diagnostics:"}) {
      assertThat(section(sweep, group)).as("sweep.sh: " + group).isEqualTo(section(infer, group));
    }
    assertThat(section(generate, "engine options:")).contains("--batch-size N|auto").contains("(default: auto)")
        .contains("--precision auto|fp32|fp16|bf16");
  }

  /** The lines of a usage text's group, from its title to the next blank line (names aligned alike in both). */
  private static String section(String usage, String title) {
    int start = usage.indexOf("\n" + title + "\n");
    if (start < 0) {
      return "";
    }
    int end = usage.indexOf("\n\n", start + 1);
    String lines = usage.substring(start + 1, end < 0 ? usage.length() : end);
    return lines.replaceAll(" {2,}", "  "); // the two tools align their columns to their own longest option
  }
}
