package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.generate.ErrorCode;
import io.sparkinfer.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.junit.jupiter.api.Test;

/** Planning tokenizes prompts a block at a time: each row's plan is the one a row alone would get, in input order. */
class PromptPlannerTest {

  @Test
  void rowsOverSeveralBlocksArePlannedInOrderAsEachAloneWouldBe() {
    TestSupport.spark(); // the executor's environment (its id)
    int limit = 12;
    List<Row> input = new ArrayList<>();
    for (int i = 0; i < 2 * PromptPlanner.BLOCK + 37; i++) {
      String id = "r" + i;
      if (i % 7 == 0) {
        input.add(RowFactory.create(id, null, ErrorCode.INVALID_REQUEST, "line " + i + " is not JSON", "f:" + i));
      } else if (i % 11 == 0) {
        input.add(RowFactory.create(id, null, null, null, "f:" + i));
      } else if (i % 13 == 0) {
        input.add(RowFactory.create(id, "", null, null, "f:" + i));
      } else {
        input.add(RowFactory.create(id, "def f" + i + "(x):" + " return x".repeat(i % 5), null, null, "f:" + i));
      }
    }
    ModelLocation model = ModelLocation.check(TestSupport.tinyModel().toString(), new Configuration(), null);
    List<Row> planned = new ArrayList<>();
    Iterator<Row> it = new PromptPlanner(model, limit, null).call(input.iterator());
    it.forEachRemaining(planned::add);

    assertThat(planned).hasSameSizeAs(input);
    try (TextTokenizer tokenizer = TextTokenizer.load(TestSupport.tinyModel())) {
      for (int i = 0; i < input.size(); i++) {
        Row in = input.get(i);
        Row out = planned.get(i);
        assertThat(out.getString(0)).as("order").isEqualTo(in.getString(0));
        if (out.getString(3) != null) {
          assertThat(out.isNullAt(6)).as("a row that cannot run carries no ids").isTrue();
        }
        if (!in.isNullAt(2)) {
          assertThat(out.getString(3)).as("the input's error kept").isEqualTo(ErrorCode.INVALID_REQUEST);
        } else if (in.isNullAt(1) || in.getString(1).isEmpty()) {
          assertThat(out.getString(3)).isEqualTo(ErrorCode.EMPTY_PROMPT);
        } else {
          long[] ids = tokenizer.encode(in.getString(1));
          int tokens = ids.length;
          assertThat(out.getInt(2)).as("the tokens of %s", in.getString(0)).isEqualTo(tokens);
          if (tokens <= limit) {
            assertThat(PromptTokenIds.fromColumn(out, 6)).as("the ids the inference tasks generate from")
                .containsExactly(ids);
          }
          assertThat(out.isNullAt(3) ? null : out.getString(3)).as("%s, %d tokens", in.getString(0), tokens)
              .isEqualTo(tokens > limit ? ErrorCode.PROMPT_TOO_LONG : null);
        }
      }
    }
    assertThat(planned).as("some prompts too long, some not").anySatisfy(r -> assertThat(r.isNullAt(3)).isTrue())
        .anySatisfy(r -> assertThat(r.getString(3)).isEqualTo(ErrorCode.PROMPT_TOO_LONG));
  }
}
