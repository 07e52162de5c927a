package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.jobs.JobOptions.InputFormat;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A JSONL input smaller than a Hadoop block is still read by every core, its lines numbered as in the file. */
class TextInputSplitTest {

  @TempDir
  Path tmp;

  @Test
  void splitsShareTheInputOverTheCoresAndNeverGoBelowTheMinimum() {
    long mb = TextInput.MIN_SPLIT_BYTES;
    assertThat(TextInput.splitBytes(18 * mb, 16)).isEqualTo(18 * mb / 16);
    assertThat(TextInput.splitBytes(100 * mb, 4)).isEqualTo(25 * mb);
    assertThat(TextInput.splitBytes(mb / 2, 16)).as("a small input: one split").isEqualTo(mb);
    assertThat(TextInput.splitBytes(3 * mb, 0)).as("no parallelism known").isEqualTo(3 * mb);
  }

  @Test
  void aFewMegabytesOfJsonlAreReadInSeveralTasksWithTheirLineNumbers() throws IOException {
    SparkSession spark = TestSupport.spark(); // local[2]
    StringBuilder text = new StringBuilder();
    int rows = 6000;
    String words = "word ".repeat(90);
    for (int i = 0; i < rows; i++) {
      text.append("{\"id\": \"r").append(i).append("\", \"prompt\": \"").append(words).append(i).append("\"}\n");
    }
    Path file = tmp.resolve("prompts.jsonl");
    Files.writeString(file, text, StandardCharsets.UTF_8);
    assertThat(Files.size(file)).as("more than twice the smallest split").isGreaterThan(2 * TextInput.MIN_SPLIT_BYTES);

    Dataset<Row> input = InputTable.read(spark, file.toString(), InputFormat.JSONL, "id", "prompt",
        spark.sparkContext().hadoopConfiguration());
    assertThat(input.rdd().getNumPartitions()).as("one split per core").isEqualTo(2);
    List<Row> read = input.select(Tables.ID, Tables.SOURCE).collectAsList();
    assertThat(read).hasSize(rows);
    for (Row r : read) {
      int i = Integer.parseInt(r.getString(0).substring(1));
      assertThat(r.getString(1)).as("row %s", r.getString(0)).isEqualTo("prompts.jsonl:" + (i + 1));
    }
  }
}
