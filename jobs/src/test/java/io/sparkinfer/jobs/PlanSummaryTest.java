package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.entry;

import io.sparkinfer.generate.ErrorCode;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;

/** What planning counts over the planned rows in its one pass ({@link PlanSummary}). */
class PlanSummaryTest {

  private static Row planned(String id, int tokens, String errorCode) {
    return planned(id, "prompt of " + id, tokens, errorCode);
  }

  private static Row planned(String id, String prompt, int tokens, String errorCode) {
    return RowFactory.create(id, prompt, tokens, errorCode, errorCode == null ? null : "why", "driver", null);
  }

  @Test
  void countsRowsErrorsAndRepeatedIds() {
    SparkSession spark = TestSupport.spark();
    Dataset<Row> rows = spark.createDataFrame(List.of(
        planned("a", 3, null),
        planned("b", 3, null),
        planned("c", 7, null),
        planned("d", 0, ErrorCode.EMPTY_PROMPT),
        planned("e", 2000, ErrorCode.PROMPT_TOO_LONG),
        planned("row-9", 0, InputRows.ERROR_CODES.get(0)),
        planned("f", 7, null),
        planned("f", 9, null),
        planned("g", 4, null),
        planned("g", 0, ErrorCode.EMPTY_PROMPT),
        planned("g", 4, null)), Tables.PLANNED).repartition(3);

    PlanSummary s = PlanSummary.of(rows);

    assertThat(s.rows()).isEqualTo(11);
    assertThat(s.plannedErrors()).as("d, e, row-9 and g's empty prompt").isEqualTo(4);
    assertThat(s.inputErrors()).isEqualTo(1);
    assertThat(s.repeatedIds()).as("f and g").isEqualTo(2);
    assertThat(s.longestPromptTokens()).as("f's 9 tokens: e's 2,000 cannot run").isEqualTo(9);
    assertThat(s.promptLengths()).as("the rows that can run by prompt length")
        .containsExactly(entry(3, 2L), entry(4, 2L), entry(7, 2L), entry(9, 1L));
    assertThat(s.partitions()).isEqualTo(3);
    assertThat(s.repeatedPrompts()).as("not asked for").isEqualTo(PlanSummary.NOT_COUNTED);

    assertThat(PlanSummary.of(rows, 2, false)).as("the ids counted by a query once their hashes would pass the bound")
        .isEqualTo(s);
    assertThat(PlanSummary.of(rows, 0, false)).isEqualTo(s);
  }

  /**
   * Asked for, the prompts held by more than one row that can run are counted, over partitions, whatever their ids;
   * a prompt whose other rows cannot run is not repeated. Past the bound on the hashes they are not counted.
   */
  @Test
  void countsThePromptsOfMoreThanOneRowThatCanRun() {
    SparkSession spark = TestSupport.spark();
    Dataset<Row> rows = spark.createDataFrame(List.of(
        planned("a", "def f():", 3, null),
        planned("b", "def f():", 3, null),
        planned("c", "def f():", 3, null),
        planned("d", "import os", 2, null),
        planned("e", "import os", 0, ErrorCode.EMPTY_PROMPT),
        planned("f", "class A:", 3, null),
        planned("g", "class A:", 3, null),
        planned("h", "x = 1", 3, null)), Tables.PLANNED).repartition(3);
    PlanSummary s = PlanSummary.of(rows, PlanSummary.MAX_ID_HASHES, true);
    assertThat(s.repeatedPrompts()).as("'def f():' and 'class A:'; 'import os' once where it can run").isEqualTo(2);
    assertThat(s.repeatedIds()).isZero();
    assertThat(s.rows()).isEqualTo(8);
    assertThat(PlanSummary.of(rows, 1, true).repeatedPrompts()).as("past the bound").isEqualTo(PlanSummary.NOT_COUNTED);

    Dataset<Row> unique = spark.createDataFrame(List.of(planned("a", "def f():", 3, null),
        planned("b", "def g():", 3, null), planned("c", "def f():", 0, ErrorCode.EMPTY_PROMPT)), Tables.PLANNED)
        .repartition(2);
    assertThat(PlanSummary.of(unique, PlanSummary.MAX_ID_HASHES, true).repeatedPrompts()).isZero();
  }

  @Test
  void nullIdsAreOneId() {
    SparkSession spark = TestSupport.spark();
    Dataset<Row> rows = spark.createDataFrame(List.of(planned(null, 3, null), planned("a", 3, null),
        planned(null, 4, null)), Tables.PLANNED).repartition(2);
    assertThat(PlanSummary.of(rows).repeatedIds()).isEqualTo(1);
    assertThat(PlanSummary.of(rows, 0, false).repeatedIds()).as("as Spark's group-by counts them").isEqualTo(1);
    assertThat(PlanSummary.of(spark.createDataFrame(List.of(planned(null, 3, null), planned("a", 3, null)),
        Tables.PLANNED)).repeatedIds()).as("one null id").isZero();
  }

  @Test
  void uniqueIdsAndNoErrors() {
    SparkSession spark = TestSupport.spark();
    PlanSummary s = PlanSummary.of(spark.createDataFrame(List.of(planned("a", 5, null), planned("b", 6, null)),
        Tables.PLANNED));
    assertThat(s.rows()).isEqualTo(2);
    assertThat(s.plannedErrors()).isZero();
    assertThat(s.inputErrors()).isZero();
    assertThat(s.repeatedIds()).isZero();
    assertThat(s.longestPromptTokens()).isEqualTo(6);
    assertThat(PlanSummary.of(spark.createDataFrame(List.of(planned("e", 0, ErrorCode.EMPTY_PROMPT)), Tables.PLANNED))
        .longestPromptTokens()).as("no row can run").isZero();
  }

  /**
   * The summary runs as one Spark job, adaptive query execution off for it (on, a shuffle of the planned rows, as here,
   * was a job of its own), and the session's setting is as it was after.
   */
  @Test
  void theSummaryIsOneSparkJobAndLeavesTheSessionsSettingAsItWas() throws InterruptedException {
    SparkSession spark = TestSupport.spark();
    Dataset<Row> rows = spark.createDataFrame(List.of(planned("a", 3, null), planned("b", 4, null),
        planned("b", 5, null)), Tables.PLANNED).repartition(3);
    String initially = spark.conf().get(AdaptiveExecution.SETTING);
    for (String setting : new String[] {"true", "false"}) {
      spark.conf().set(AdaptiveExecution.SETTING, setting);
      String group = "plan-summary-" + setting;
      spark.sparkContext().setJobGroup(group, "PlanSummaryTest", false);
      try {
        assertThat(PlanSummary.of(rows).repeatedIds()).isEqualTo(1);
      } finally {
        spark.sparkContext().clearJobGroup();
      }
      assertThat(jobsOf(spark, group)).as("Spark jobs of the summary, the session's setting %s", setting).isEqualTo(1);
      assertThat(spark.conf().get(AdaptiveExecution.SETTING)).as("the session's setting after").isEqualTo(setting);
    }
    spark.conf().set(AdaptiveExecution.SETTING, initially);
  }

  /** The jobs Spark's status tracker lists for {@code group}, once the count has stayed put for half a second. */
  private static int jobsOf(SparkSession spark, String group) throws InterruptedException {
    int seen = -1;
    long stableSince = System.nanoTime();
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (System.nanoTime() < deadline) {
      int now = spark.sparkContext().statusTracker().getJobIdsForGroup(group).length;
      if (now != seen) {
        seen = now;
        stableSince = System.nanoTime();
      } else if (now > 0 && System.nanoTime() - stableSince > 500_000_000L) {
        return now;
      }
      Thread.sleep(20);
    }
    return seen;
  }

  @Test
  void noRows() {
    SparkSession spark = TestSupport.spark();
    Dataset<Row> none = spark.createDataFrame(List.<Row>of(), Tables.PLANNED);
    assertThat(PlanSummary.of(none, PlanSummary.MAX_ID_HASHES, true)).isEqualTo(
        new PlanSummary(0, 0, 0, 0, new java.util.TreeMap<>(), none.javaRDD().getNumPartitions(), 0));
  }
}
