package io.sparkinfer.backend.scripted;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.backend.ForwardBatch;
import java.nio.LongBuffer;

/**
 * The fixed input tensors that decode steps read, and the device-side loop of greedy decoding: each step's
 * argmax is recorded and fed back as the next step's input, so several greedy steps run without the host
 * in between (and, captured in a CUDA graph, without launches in between).
 *
 * <p>Token ids, positions and the step counter are written with one host-to-device copy.
 */
final class DecodeInputs {

  /** Most greedy steps one call runs before the host reads their tokens. */
  static final int MAX_STEPS = 16;
  private static final NDIndex ALL = new NDIndex(":");

  private final int batchSize;
  private final NDArray packed; // (2B + 1) int64: token ids, positions, the step counter
  private final long[] staged; // the same on the host
  private final NDArray inputIds; // (B, 1) view of packed
  private final NDArray positions; // (B, 1) view of packed
  private final NDArray counter; // (1) view of packed: the history row the next step writes
  private final NDArray lastIndex; // (B) zeros: decode rows have one token
  private final NDArray history; // (MAX_STEPS, B) int64: each fed-back step's tokens
  private final NDArray one; // (1) int64 1, made here: a number given to a DJL op becomes a host-to-device copy,
  private final NDArray lastSlot; // (1) int64, which a graph capture cannot hold

  /**
   * @param lastSlot the cache's last slot: fed-back positions stop there, so idle rows never write past it
   */
  DecodeInputs(NDManager manager, int batchSize, int lastSlot) {
    this.batchSize = batchSize;
    this.packed = manager.zeros(new Shape(2L * batchSize + 1), DataType.INT64);
    this.staged = new long[2 * batchSize + 1];
    this.inputIds = packed.get("0:{}", batchSize).reshape(batchSize, 1); // (B) -> (B, 1), views of packed
    this.positions = packed.get("{}:{}", batchSize, 2 * batchSize).reshape(batchSize, 1);
    this.counter = packed.get("{}:", 2 * batchSize);
    this.lastIndex = manager.zeros(new Shape(batchSize), DataType.INT64);
    this.history = manager.zeros(new Shape(MAX_STEPS, batchSize), DataType.INT64);
    this.one = manager.create(new long[] {1});
    this.lastSlot = manager.create(new long[] {lastSlot});
  }

  /**
   * Writes a step's inputs in place and resets the step counter: one copy to the device, then a copy into
   * the fixed tensor. ({@code NDArray.set(Buffer)} would give the array new storage, which a captured graph
   * never sees.)
   *
   * @param scope owns the temporary device copy
   */
  void write(NDManager scope, long[] tokenIds, long[] tokenPositions) {
    System.arraycopy(tokenIds, 0, staged, 0, batchSize);
    System.arraycopy(tokenPositions, 0, staged, batchSize, batchSize);
    staged[2 * batchSize] = 0;
    rewrite(scope);
  }

  /** Writes the inputs of the last {@link #write} again (after diagnostics replayed steps). */
  void rewrite(NDManager scope) {
    packed.set(ALL, scope.create(LongBuffer.wrap(staged), packed.getShape(), DataType.INT64));
  }

  /** A decode batch over the fixed tensors, reading {@code keyLength} cache slots. */
  ForwardBatch batch(int keyLength) {
    return new ForwardBatch(inputIds, positions, lastIndex, keyLength);
  }

  /**
   * After a step, on the device: records its greedy tokens in the history, makes them the next step's input
   * ids and advances every position by one (at most the cache's last slot, so idle rows stay inside it).
   * Only device ops on tensors made beforehand, so a CUDA graph can capture it.
   *
   * @param logits (B, V) the step's logits; the temporaries made here are attached to their manager
   */
  void feedBack(NDArray logits) {
    NDArray next = logits.argMax(-1); // (B) int64
    history.set(new NDIndex("{}", counter), next.reshape(1, batchSize)); // history[counter] = next: (B) -> (1, B)
    counter.addi(one);
    inputIds.set(ALL, next.reshape(batchSize, 1)); // (B) -> (B, 1)
    positions.set(ALL, positions.add(one).minimum(lastSlot));
  }

  /** Waits until the device has run every step queued so far (reads the step counter they advance). */
  void waitForDevice() {
    counter.toLongArray();
  }

  /** The tokens of the first {@code steps} fed-back steps since the last write: [step][row]. */
  long[][] history(int steps) {
    long[] flat = history.get("0:{}", steps).toLongArray();
    long[][] out = new long[steps][];
    for (int s = 0; s < steps; s++) {
      out[s] = java.util.Arrays.copyOfRange(flat, s * batchSize, (s + 1) * batchSize);
    }
    return out;
  }
}
