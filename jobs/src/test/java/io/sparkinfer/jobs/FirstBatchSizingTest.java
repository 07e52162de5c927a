package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job's generators size their first auto-sized batch for the run's longest prompt, which planning counted and
 * the inference tasks pass on ({@link PartitionInference}): prompts are range-partitioned by length and local[2]
 * runs the two shortest partitions first, so without it the first batch would be sized for their prompts only.
 */
class FirstBatchSizingTest {

  static final String GENERATOR_LOGGER = "io.sparkinfer.generate.Generator";
  static final Pattern AUTO_SIZED = Pattern.compile("rows fit for prompts of up to (\\d+) tokens");

  @TempDir
  Path tmp;

  @Test
  void theFirstBatchHoldsTheRunsLongestPrompt() {
    Map<String, String> prompts = new LinkedHashMap<>();
    for (int i = 1; i <= 8; i++) {
      prompts.put("p" + i, "x = 1\n".repeat(i * i)); // lengths far apart: each range partition its own
    }
    Path input = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), prompts);
    String out = tmp.resolve("out").toString();
    List<String> logged = Collections.synchronizedList(new ArrayList<>());
    LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
    AbstractAppender appender = new AbstractAppender("first-batch", null, null, true, Property.EMPTY_ARRAY) {
      @Override
      public void append(LogEvent event) {
        logged.add(event.getMessage().getFormattedMessage());
      }
    };
    appender.start();
    LoggerConfig logger = new LoggerConfig(GENERATOR_LOGGER, Level.INFO, true);
    logger.addAppender(appender, Level.INFO, null);
    ctx.getConfiguration().addLogger(GENERATOR_LOGGER, logger);
    ctx.updateLoggers();
    SparkSession spark = TestSupport.spark();
    try {
      BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input",
          input.toString(), "--output", out, "--max-new-tokens", "2", "--batch-size", "auto", "--partitions", "4",
          "--progress-seconds", "0"));
    } finally {
      ctx.getConfiguration().removeLogger(GENERATOR_LOGGER);
      ctx.updateLoggers();
      appender.stop();
    }
    int longest = spark.read().parquet(out).agg(org.apache.spark.sql.functions.max("prompt_tokens")).first().getInt(0);
    List<Integer> sized = new ArrayList<>();
    for (String line : logged) {
      Matcher m = AUTO_SIZED.matcher(line);
      if (m.find()) {
        sized.add(Integer.parseInt(m.group(1)));
      }
    }
    assertThat(sized).as("auto-sized batches (%s)", logged).isNotEmpty();
    assertThat(sized.get(0)).as("the first batch, for the run's longest prompt").isEqualTo(longest);
  }
}
