package io.sparkinfer.backend;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.util.function.Supplier;

/**
 * Keys and values of every layer for a batch of sequences, allocated once for the batch's whole life.
 *
 * <p>Each row holds one sequence; slot {@code p} of a row holds the token at position {@code p} of that
 * sequence, so rows advance independently (prompts of different lengths, sequences that join later).
 * Writes go in place at given positions; nothing is concatenated per step.
 *
 * <p>Dimensions: B rows, K key/value heads, C capacity (slots per row), D head dim. A layer's keys are held
 * as (B, C, K, D), so each row's slots are contiguous and the cache reads as (B*C, K, D) packed sequences
 * (the layout of variable-length attention kernels); {@link #keys} gives the (B, K, T, D) view.
 *
 * <p>A float8 cache ({@link #float8()}, {@code --kv-cache-dtype fp8}) holds each value as one float8 e4m3 byte (the
 * tensors are uint8, which DJL can make): the scripted backend's kernels and TorchScript step write the values rounded
 * to e4m3 and saturated at +-448, and widen them to {@link #dataType()} as they read them. Only those write and read
 * it: {@link #write}, {@link #keys} and {@link #values} (the eager backend's) refuse it.
 */
public final class KvCache implements BatchCache {

  private final NDManager manager;
  private final NDArray[] keys; // per layer (B, C, K, D)
  private final NDArray[] values; // per layer (B, C, K, D)
  private final NDArray rowIndex; // (B, 1) int64: 0..B-1, broadcast against positions when writing
  private final int batchSize;
  private final int capacity;
  private final DataType dataType; // kept here: DJL reports bf16 tensors' dtype as UNKNOWN
  private final boolean float8; // the tensors are uint8 holding float8 e4m3 bytes
  private final CacheAttachments attachments = new CacheAttachments();

  private KvCache(NDManager manager, NDArray[] keys, NDArray[] values, NDArray rowIndex, int batchSize, int capacity,
      DataType dataType, boolean float8) {
    this.manager = manager;
    this.dataType = dataType;
    this.float8 = float8;
    this.keys = keys;
    this.values = values;
    this.rowIndex = rowIndex;
    this.batchSize = batchSize;
    this.capacity = capacity;
  }

  /**
   * Allocates a zeroed cache (zeros, so slots not yet written are finite and masking stays exact).
   *
   * @param parent the manager whose device holds the cache; the cache gets a sub-manager of it
   */
  public static KvCache allocate(NDManager parent, ModelConfig config, int batchSize, int capacity, DataType dataType) {
    return allocate(parent, config, batchSize, capacity, dataType, false);
  }

  /**
   * Allocates a zeroed cache for steps computing in {@code dataType}, holding float8 e4m3 bytes when {@code float8}
   * (zero bytes are e4m3 zeros).
   */
  public static KvCache allocate(NDManager parent, ModelConfig config, int batchSize, int capacity, DataType dataType,
      boolean float8) {
    if (batchSize <= 0 || capacity <= 0) {
      throw new IllegalArgumentException("KV cache needs batch > 0 and capacity > 0, got " + batchSize + " x " + capacity);
    }
    NDManager manager = parent.newSubManager();
    int layers = config.numHiddenLayers();
    NDArray[] k = new NDArray[layers];
    NDArray[] v = new NDArray[layers];
    Shape shape = new Shape(batchSize, capacity, config.numKeyValueHeads(), config.headDim());
    DataType storage = float8 ? DataType.UINT8 : dataType;
    for (int i = 0; i < layers; i++) {
      k[i] = ScriptedTensors.zeros(manager, shape, storage);
      v[i] = ScriptedTensors.zeros(manager, shape, storage);
    }
    NDArray rows = manager.arange(0, batchSize, 1, DataType.INT64).reshape(batchSize, 1); // (B) -> (B, 1)
    return new KvCache(manager, k, v, rows, batchSize, capacity, dataType, float8);
  }

  /**
   * Bytes one sequence needs per slot: keys and values of every layer, held in {@code dataType} (a float8 cache:
   * {@link DataType#UINT8}).
   */
  public static long bytesPerToken(ModelConfig config, DataType dataType) {
    return 2L * config.numHiddenLayers() * config.numKeyValueHeads() * config.headDim() * dataType.getNumOfBytes();
  }

  /**
   * Writes a layer's new keys and values at each row's positions, in place.
   *
   * @param positions (B, S) int64: the slot of each new token
   * @param k (B, K, S, D)
   * @param v (B, K, S, D)
   */
  public void write(int layer, NDArray positions, NDArray k, NDArray v) {
    requireModelDtype("write");
    NDIndex at = new NDIndex("{}, {}", rowIndex, positions); // selects (B, S, K, D)
    keys[layer].set(at, k.transpose(0, 2, 1, 3)); // (B, K, S, D) -> (B, S, K, D)
    values[layer].set(at, v.transpose(0, 2, 1, 3));
  }

  /** A backend's view of a batch cache it allocated: one device's {@link KvCache}. */
  public static KvCache of(BatchCache cache) {
    if (cache instanceof KvCache k) {
      return k;
    }
    throw new IllegalArgumentException("this backend runs on one device's KvCache, got " + cache.getClass().getName());
  }

  @Override
  public void copyRowsFrom(BatchCache from, long[] dstRows, int length) {
    KvCache src = of(from);
    if (src.float8 != float8) {
      throw new IllegalArgumentException("cannot copy rows between a float8 and a " + dataType + " KV cache");
    }
    if ((dstRows.length != src.batchSize && src.batchSize != 1) || length > src.capacity || length > capacity) {
      throw new IllegalArgumentException("cannot copy " + src.batchSize + " rows of " + length + " slots into rows "
          + java.util.Arrays.toString(dstRows) + " of a cache with capacity " + capacity);
    }
    try (NDManager scope = manager.newSubManager()) {
      NDArray rows = scope.create(dstRows); // (R)
      for (int i = 0; i < keys.length; i++) {
        ScriptedTensors.copyRows(keys[i], rows, length, src.keys[i]); // (R, length, K, D) into the rows
        ScriptedTensors.copyRows(values[i], rows, length, src.values[i]);
      }
    }
  }

  /** The first {@code length} slots of a layer's keys as a (B, K, length, D) view, attached to {@code scope}. */
  public NDArray keys(NDManager scope, int layer, int length) {
    requireModelDtype("keys");
    return keys[layer].get(scope, new NDIndex(":, :{}", length)).transpose(0, 2, 1, 3); // (B, T, K, D) -> (B, K, T, D)
  }

  /** The first {@code length} slots of a layer's values as a (B, K, length, D) view, attached to {@code scope}. */
  public NDArray values(NDManager scope, int layer, int length) {
    requireModelDtype("values");
    return values[layer].get(scope, new NDIndex(":, :{}", length)).transpose(0, 2, 1, 3); // (B, T, K, D) -> (B, K, T, D)
  }

  /** The raw per-layer key arrays (B, C, K, D), for backends that take the whole cache in one call. */
  public NDArray[] keyArrays() {
    return keys.clone();
  }

  /** The raw per-layer value arrays (B, C, K, D). */
  public NDArray[] valueArrays() {
    return values.clone();
  }

  @Override
  public int batchSize() {
    return batchSize;
  }

  @Override
  public int capacity() {
    return capacity;
  }

  /** The dtype steps compute keys and values in, and hold them in unless {@link #float8()}. */
  public DataType dataType() {
    return dataType;
  }

  /** Whether the tensors hold float8 e4m3 bytes (uint8) rather than {@link #dataType()} values. */
  public boolean float8() {
    return float8;
  }

  private void requireModelDtype(String what) {
    if (float8) {
      throw new UnsupportedOperationException(what + ": a float8 KV cache is written and read only by the scripted "
          + "backend's steps");
    }
  }

  @Override
  public <T extends AutoCloseable> T attachment(Class<T> type, Supplier<T> create) {
    return attachments.get(type, create);
  }

  @Override
  public void close() {
    try {
      attachments.close();
    } finally {
      manager.close();
    }
  }
}
