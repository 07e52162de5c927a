package io.sparkinfer.jobs;

import io.sparkinfer.generate.ErrorCode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * Planning, on the executors: tokenizes each prompt with the model's tokenizer (its ids go on to the inference tasks,
 * {@link PromptTokenIds}, so a prompt is tokenized once) and turns prompts that cannot run into error rows (empty or
 * null: {@code empty_prompt}; longer than the model's context less one, or than {@code --max-prompt-tokens}:
 * {@code prompt_too_long}). Input rows follow {@link Tables#INPUT}: those the input could not give are errors already
 * and keep their error; output rows follow {@link Tables#PLANNED}.
 */
final class PromptPlanner implements MapPartitionsFunction<Row, Row> {

  /** Rows planned together: their prompts are tokenized in one call, on Hugging Face tokenizers' threads. */
  static final int BLOCK = 256;

  private final ModelLocation model;
  private final int maxPromptTokens;
  private final JobOptions preload; // null: no preload

  /** @param preload the options of the engines to preload ({@code --preload-engines}); null for none */
  PromptPlanner(ModelLocation model, int maxPromptTokens, JobOptions preload) {
    this.model = model;
    this.maxPromptTokens = maxPromptTokens;
    this.preload = preload;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    if (preload != null && input.hasNext()) {
      PartitionInference.preloadEngines(preload, model, TaskContext.get()); // in the background
    }
    ExecutorEngines.PlanningTokenizer tok = ExecutorEngines.tokenizer(model.localDir());
    int context = tok.contextLength();
    int limit = maxPromptTokens > 0 ? Math.min(maxPromptTokens, context - 1) : context - 1;
    String executorId = SparkEnv.get().executorId();
    return new Iterator<>() {
      private final Deque<Row> planned = new ArrayDeque<>();

      @Override
      public boolean hasNext() {
        return !planned.isEmpty() || input.hasNext();
      }

      @Override
      public Row next() {
        if (planned.isEmpty()) {
          planBlock();
        }
        Row r = planned.poll();
        if (r == null) {
          throw new NoSuchElementException();
        }
        return r;
      }

      /** Plans the next {@link #BLOCK} rows, their prompts tokenized in one call. */
      private void planBlock() {
        List<Row> rows = new ArrayList<>(BLOCK);
        List<String> prompts = new ArrayList<>(BLOCK);
        while (rows.size() < BLOCK && input.hasNext()) {
          Row r = input.next();
          rows.add(r);
          if (needsTokens(r)) {
            prompts.add(r.getString(1));
          }
        }
        long[][] ids = tok.tokenizer().encodeAll(prompts);
        int next = 0;
        for (Row r : rows) {
          planned.add(plan(r, needsTokens(r) ? ids[next++] : new long[0]));
        }
      }

      private Row plan(Row r, long[] ids) {
        int tokens = ids.length;
        String id = r.getString(0);
        String prompt = r.isNullAt(1) ? null : r.getString(1);
        if (!r.isNullAt(2)) {
          return RowFactory.create(id, prompt, 0, r.getString(2), r.getString(3), executorId, null);
        }
        if (prompt == null) {
          return RowFactory.create(id, null, 0, ErrorCode.EMPTY_PROMPT, "the prompt is null", executorId, null);
        }
        if (prompt.isEmpty()) {
          return RowFactory.create(id, prompt, 0, ErrorCode.EMPTY_PROMPT, "the prompt is empty", executorId, null);
        }
        if (tokens == 0) {
          return RowFactory.create(id, prompt, 0, ErrorCode.EMPTY_PROMPT, "the prompt has no tokens", executorId,
              null);
        }
        if (tokens > limit) {
          return RowFactory.create(id, prompt, tokens, ErrorCode.PROMPT_TOO_LONG, "the prompt has " + tokens
              + " tokens; the limit is " + limit + " (model context " + context + " tokens, one kept for output"
              + (maxPromptTokens > 0 ? "; --max-prompt-tokens " + maxPromptTokens : "") + ")", executorId, null);
        }
        return RowFactory.create(id, prompt, tokens, null, null, executorId, PromptTokenIds.toColumn(ids));
      }
    };
  }

  /** Whether planning counts {@code r}'s tokens: a row the input gave, with a prompt that is not empty. */
  private static boolean needsTokens(Row r) {
    return r.isNullAt(2) && !r.isNullAt(1) && !r.getString(1).isEmpty();
  }
}
