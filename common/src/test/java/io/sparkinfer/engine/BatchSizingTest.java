package io.sparkinfer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.types.DataType;
import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.fused.FusedDecodeStep;
import io.sparkinfer.backend.scripted.DecodeGraphs;
import io.sparkinfer.generate.BatchSizer;
import io.sparkinfer.model.ModelConfig;
import java.util.function.IntToLongFunction;
import org.junit.jupiter.api.Test;

/**
 * {@code --batch-size auto}: rows pay for what they hold while the batch runs; prefill, done one group of at most
 * {@code --max-prefill-tokens} padded tokens at a time, is reserved once per batch.
 */
class BatchSizingTest {

  /** DeepSeek-R1-Distill-Qwen-1.5B's shape: the checkpoint of {@code submit/bench.sh}. */
  static final ModelConfig QWEN_1_5B = ModelConfig.parse("""
      {"model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
       "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
       "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "rope_theta": 10000.0}""");

  static final DataType FP16 = DataType.FLOAT16;
  static final int MAX_PREFILL = 32768;

  @Test
  void thePrefillReserveIsTakenOncePerBatchNotOncePerRow() {
    CausalLmBackend none = new Sized(tokens -> 0);
    long reserve = BatchSizer.prefillBytes(QWEN_1_5B, FP16, 512, MAX_PREFILL);
    long row = BatchSizer.bytesPerSequence(QWEN_1_5B, FP16, none, 512, 128);
    int n = (int) (reserve / row) + 10; // rows taking more than the reserve: the whole group is reserved
    assertThat(BatchSizer.fit(reserve + n * row, QWEN_1_5B, FP16, none, 512, 128, MAX_PREFILL)).isEqualTo(n);
    assertThat(BatchSizer.fit(reserve + 2L * n * row, QWEN_1_5B, FP16, none, 512, 128, MAX_PREFILL))
        .as("twice the rows' memory, twice the rows").isEqualTo(2 * n);
    assertThat(BatchSizer.fit(row / 2, QWEN_1_5B, FP16, none, 512, 128, MAX_PREFILL))
        .as("never less than one row").isEqualTo(1);
    assertThat(row).as("a row: its KV cache for 640 tokens and two rows of float32 logits")
        .isEqualTo(io.sparkinfer.backend.KvCache.bytesPerToken(QWEN_1_5B, FP16) * 640 + 2L * 151936 * 4);
  }

  /**
   * Where a whole prefill group's reserve would take more than half the budget, the group shrinks (halving, down to one
   * prompt) and leaves the rest to rows: long prompts on a CPU's budget no longer size batches of one row.
   */
  @Test
  void aPrefillGroupShrinksWhereItsReserveWouldCrowdOutTheRows() {
    ModelConfig demo = ModelConfig.load(io.sparkinfer.testing.Fixtures.demoModel());
    DataType fp32 = DataType.FLOAT32;
    CausalLmBackend none = new Sized(tokens -> 0);
    long cpu = 2L << 30;
    assertThat(BatchSizer.prefillBytes(demo, fp32, 421, MAX_PREFILL)).as("a whole group's reserve").isGreaterThan(cpu);
    int group = BatchSizer.prefillTokens(cpu, demo, fp32, 421, MAX_PREFILL);
    assertThat(group).as("a smaller group").isLessThan(MAX_PREFILL).isGreaterThanOrEqualTo(421);
    assertThat(BatchSizer.prefillBytes(demo, fp32, 421, group)).as("its reserve").isLessThanOrEqualTo(cpu / 2);
    assertThat(BatchSizer.prefillBytes(demo, fp32, 421, 2 * group)).as("the group twice as large")
        .isGreaterThan(cpu / 2);
    assertThat(BatchSizer.fit(cpu, demo, fp32, none, 421, 1, MAX_PREFILL)).as("rows of 421-token prompts on a CPU")
        .isGreaterThan(100);
    assertThat(BatchSizer.prefillTokens(2 * cpu, demo, fp32, 421, MAX_PREFILL))
        .as("twice the budget: a group twice as large").isEqualTo(2 * group);
    long whole = BatchSizer.prefillBytes(demo, fp32, 421, MAX_PREFILL);
    assertThat(BatchSizer.prefillTokens(2 * whole, demo, fp32, 421, MAX_PREFILL))
        .as("the whole group's reserve within half the budget: the whole group").isEqualTo(MAX_PREFILL);
    assertThat(BatchSizer.prefillTokens(1, demo, fp32, 421, MAX_PREFILL)).as("no memory: one prompt a group")
        .isBetween(421, 2 * 421 - 1);
  }

  /**
   * Llama-2-7B in fp16 on a 24 GB GPU (13.5 GB of weights, 80% of the rest): a whole group of 32,768 prompt tokens would
   * reserve more than all of the memory (its KV cache alone is 17 GB), which sized batches of one row; a smaller group
   * leaves room for rows of 512 + 128 tokens.
   */
  @Test
  void aLargeModelOnASmallGpuPrefillsInSmallerGroupsAndFitsRows() {
    ModelConfig llama7b = ModelConfig.parse("""
        {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
         "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}""");
    long free = (long) ((24e9 - 13.5e9) * 0.8);
    CausalLmBackend none = new Sized(tokens -> 0);
    assertThat(BatchSizer.prefillBytes(llama7b, FP16, 512, MAX_PREFILL)).as("a whole group's reserve")
        .isGreaterThan(free);
    assertThat(BatchSizer.prefillTokens(free, llama7b, FP16, 512, MAX_PREFILL)).as("the group").isLessThan(MAX_PREFILL);
    assertThat(BatchSizer.fit(free, llama7b, FP16, none, 512, 128, MAX_PREFILL)).as("rows").isGreaterThanOrEqualTo(8);
  }

  @Test
  void aPrefillGroupIsBoundedByMaxPrefillTokensWhateverThePromptLength() {
    long group = BatchSizer.prefillBytes(QWEN_1_5B, FP16, 512, MAX_PREFILL);
    assertThat(BatchSizer.prefillBytes(QWEN_1_5B, FP16, 512, 2 * MAX_PREFILL)).as("twice the tokens per group")
        .isBetween(2 * group - 1, 2 * group + 1);
    assertThat(BatchSizer.prefillBytes(QWEN_1_5B, FP16, 100_000, MAX_PREFILL))
        .as("a prompt longer than the bound is a group of its own")
        .isEqualTo(BatchSizer.prefillBytes(QWEN_1_5B, FP16, 100_000, 100_000));
  }

  /**
   * The benchmark's workload on an H200 (141 GB, 3.1 GB of fp16 weights loaded, 80% of the rest): prompts of up to
   * 512 tokens and 128 new ones fit at least 256 rows (issue 13 asks for it), with the scripted backend's graphs'
   * logits and fused step buffers per row; and long prompts are not sized as if every row prefilled at once.
   */
  @Test
  void theBenchmarkCheckpointFitsAtLeast256RowsOnAnH200() {
    long free = (long) ((141L * 1000 * 1000 * 1000 - 3_087_428_608L) * 0.8);
    CausalLmBackend scripted = scriptedWorkspace(QWEN_1_5B);
    int rows = BatchSizer.fit(free, QWEN_1_5B, FP16, scripted, 512, 128, MAX_PREFILL);
    assertThat(rows).isGreaterThanOrEqualTo(256);
    int longPrompts = BatchSizer.fit(free, QWEN_1_5B, FP16, scripted, 4096, 512, MAX_PREFILL);
    long kvOnly = free / (io.sparkinfer.backend.KvCache.bytesPerToken(QWEN_1_5B, FP16) * (4096 + 512));
    assertThat((double) longPrompts).as("4096-token prompts: most of what the KV cache alone would allow (%d)",
        kvOnly).isGreaterThan(0.5 * kvOnly);
  }

  /** The scripted backend's workspace with CUDA graphs and the fused step, as {@code ScriptedCausalLm} states it. */
  private static CausalLmBackend scriptedWorkspace(ModelConfig c) {
    return new Sized(tokens -> (tokens + DecodeGraphs.KEY_BUCKET - 1) / DecodeGraphs.KEY_BUCKET * c.vocabSize() * 4L
        + FusedDecodeStep.bytesPerRow(c, 2));
  }

  /** A backend that only states its workspace per sequence of {@code tokens} slots. */
  private record Sized(IntToLongFunction bytes) implements CausalLmBackend {
    @Override
    public long workspaceBytesPerSequence(int tokens) {
      return bytes.applyAsLong(tokens);
    }

    @Override
    public String name() {
      return "sized";
    }

    @Override
    public ai.djl.ndarray.NDArray forward(ai.djl.ndarray.NDManager scope, ForwardBatch batch, BatchCache cache) {
      throw new UnsupportedOperationException();
    }

    @Override
    public BatchCache allocateCache(ai.djl.ndarray.NDManager parent, int batchSize, int capacity) {
      throw new UnsupportedOperationException();
    }
  }
}
