package io.sparkinfer.backend.scripted;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.backend.fused.FusedDecode;
import io.sparkinfer.backend.fused.FusedDecodeStep;
import io.sparkinfer.cuda.CudaGraphs;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.util.HashMap;
import java.util.Map;

/**
 * The CUDA graphs of the decode steps over one batch's KV cache, attached to the cache and closed with it.
 *
 * <p>A step's shapes depend on how many cache slots attention reads, so there is one graph per key-length
 * bucket: slots read are rounded up to a multiple of {@link #KEY_BUCKET} (the extra slots are masked, as
 * in every step), and each bucket's graph is captured the first time a step needs it, then replayed for
 * every later step in the bucket. Graphs replay on the tensors they were captured with: each step's token
 * ids and positions are copied into fixed input tensors, and each graph overwrites one fixed logits tensor.
 * Each graph also feeds its greedy tokens back as the next inputs, so greedy steps can replay back to back.
 * All graphs of a cache share one memory pool (they replay one at a time on the cache's thread). Decode
 * steps in flash attention (fp16/bf16 on a GPU) read only each row's written slots whatever the key length,
 * so their cache needs a single graph.
 */
public final class DecodeGraphs implements AutoCloseable {

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(DecodeGraphs.class);

  /** Key slots are read in multiples of this: a batch of 128 new tokens over 512-token prompts needs 2 graphs. */
  public static final int KEY_BUCKET = 128;
  /**
   * Plain runs before a capture, so TorchScript's executor has settled what it runs (with
   * {@code --torchscript-optimize} it profiles first, then compiles fused kernels: 4 runs).
   */
  static final int WARMUP_RUNS = 2;
  private static final NDIndex ALL = new NDIndex(":");

  private final ScriptedCausalLm model;
  private final DecodeAcceleration acceleration;
  private final KvCache cache;
  private final NDManager manager;
  private final DecodeInputs inputs;
  private final Map<Integer, Captured> byKeyLength = new HashMap<>();
  private CudaGraphs.Graph poolOwner;
  private FusedDecodeStep fusedStep; // the fused step over this cache, made on the first capture that uses it

  private record Captured(CudaGraphs.Graph graph, NDArray logits) {}

  DecodeGraphs(ScriptedCausalLm model, DecodeAcceleration acceleration, KvCache cache, Device device) {
    this.model = model;
    this.acceleration = acceleration;
    this.cache = cache;
    this.manager = NDManager.newBaseManager(device);
    this.inputs = new DecodeInputs(manager, cache.batchSize(), cache.capacity() - 1);
  }

  /** Key slots a step reading {@code keyLength} of them runs with: rounded up to a bucket, within the cache. */
  static int bucket(int keyLength, int capacity) {
    return Math.min(capacity, (keyLength + KEY_BUCKET - 1) / KEY_BUCKET * KEY_BUCKET);
  }

  /**
   * Runs one decode step by replaying its bucket's graph (capturing it first if needed): the step's token
   * ids and positions (B each) go to the device in one copy.
   *
   * @return (B, V) float32 logits attached to {@code scope}: a view of the graph's output, valid until the
   *     next step over this cache (a float32 copy of a fused step's logits)
   */
  NDArray step(NDManager scope, long[] tokenIds, long[] tokenPositions, int keyLength) {
    inputs.write(scope, tokenIds, tokenPositions);
    Captured c = graphFor(keyLength);
    c.graph().replay();
    acceleration.countReplays(1);
    NDArray logits = c.logits();
    if (logits.getDataType() == DataType.FLOAT32) {
      return logits.get(scope, ALL);
    }
    NDArray cast = ScriptedTensors.cast(logits, DataType.FLOAT32); // a fused step's float16/bfloat16 logits
    cast.attach(scope);
    return cast;
  }

  /**
   * Runs {@code steps} greedy decode steps as back-to-back replays: each graph also feeds its argmax back
   * as the next input ({@link DecodeInputs#feedBack}), so the host reads all their tokens once at the end.
   *
   * @param keyLength 1 + the largest position the last step reads
   * @return the tokens, [step][row]
   */
  long[][] greedy(NDManager scope, long[] tokenIds, long[] tokenPositions, int keyLength, int steps) {
    inputs.write(scope, tokenIds, tokenPositions);
    Captured c = graphFor(keyLength);
    for (int s = 0; s < steps; s++) {
      c.graph().replay();
    }
    acceleration.countReplays(steps);
    return inputs.history(steps);
  }

  private Captured graphFor(int keyLength) {
    // flash decode reads each row's written slots whatever the key length: one graph serves the whole cache
    int keys = model.decodeReadsWrittenSlotsOnly() ? cache.capacity() : bucket(keyLength, cache.capacity());
    Captured c = byKeyLength.get(keys);
    if (c == null) {
      c = capture(keys);
      byKeyLength.put(keys, c);
    }
    return c;
  }

  /**
   * Captures the step reading {@code keys} slots: the fused step ({@link FusedDecodeStep}) when the model
   * takes it (and, for a float8 cache, reads one), else the TorchScript step. If the fused step fails, fused steps
   * are turned off for the model and the TorchScript step is captured instead.
   */
  private Captured capture(int keys) {
    long start = System.nanoTime();
    FusedDecode fused = acceleration.fused();
    if (fused != null && fused.reads(cache)) {
      try {
        if (fusedStep == null) {
          fusedStep = fused.newStep(cache);
        }
        return counted(capture(keys, (scope, fixed) -> fusedStep.run(scope, fixed)), true, start);
      } catch (RuntimeException e) {
        acceleration.fusedFailed(e);
      }
    }
    return counted(capture(keys, (scope, fixed) -> model.run(scope, fixed, cache)), false, start);
  }

  /** {@code c}, counted with the time since {@code start} once the device has run its warm-up runs. */
  private Captured counted(Captured c, boolean fusedStep, long start) {
    inputs.waitForDevice();
    acceleration.countCapture(fusedStep, System.nanoTime() - start);
    return c;
  }

  /** One decode step queued on the device: (B, V) logits (float32, or a fused step's compute dtype) attached to the scope. */
  private interface Step {
    NDArray run(NDManager scope, ForwardBatch fixed);
  }

  private Captured capture(int keys, Step step) {
    ForwardBatch fixed = inputs.batch(keys);
    for (int i = 0; i < (model.optimize() ? 2 * WARMUP_RUNS : WARMUP_RUNS); i++) {
      try (NDManager warmup = manager.newSubManager()) {
        step.run(warmup, fixed); // writes this step's keys and values, as the replay will again
      }
    }
    CudaGraphs.Graph graph = new CudaGraphs.Graph();
    try {
      NDArray logits = graph.capture(poolOwner, () -> {
        NDArray out = step.run(manager, fixed);
        inputs.feedBack(out); // replays used one step at a time overwrite it
        return out;
      });
      if (poolOwner == null) {
        poolOwner = graph;
      }
      if (model.graphTiming()) {
        timeReplays(graph, keys);
      }
      return new Captured(graph, logits);
    } catch (RuntimeException e) {
      graph.close();
      throw e;
    }
  }

  /**
   * With {@code --graph-timing}, each new graph is replayed back to back (the step's own inputs again, so
   * the cache ends as it would) and the GPU time per replay is logged: the step's device time apart from
   * what the host adds between steps.
   */
  private void timeReplays(CudaGraphs.Graph graph, int keys) {
    int n = DecodeInputs.MAX_STEPS - 1; // each replay records its tokens in the next history row
    graph.replay();
    inputs.waitForDevice();
    long start = System.nanoTime();
    for (int i = 0; i < n; i++) {
      graph.replay();
    }
    long launched = System.nanoTime();
    inputs.waitForDevice();
    long done = System.nanoTime();
    double perReplay = (done - start) / 1e6 / n;
    acceleration.recordReplayTime(cache.batchSize(), perReplay);
    LOG.info(String.format(java.util.Locale.ROOT, "graph B=%d T=%d: %.3f ms per replay back to back, %.3f ms to launch",
        cache.batchSize(), keys, perReplay, (launched - start) / 1e6 / n));
    try (NDManager scope = manager.newSubManager()) {
      inputs.rewrite(scope); // the replays fed their tokens back: the step's own inputs again
    }
  }

  @Override
  public void close() {
    manager.close(); // the fixed tensors and outputs go back to the graphs' pool, which the graphs then free
    byKeyLength.values().forEach(c -> c.graph().close());
    byKeyLength.clear();
    if (fusedStep != null) {
      fusedStep.close();
      fusedStep = null;
    }
  }
}
