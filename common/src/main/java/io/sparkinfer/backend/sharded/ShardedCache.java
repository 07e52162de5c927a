package io.sparkinfer.backend.sharded;

import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.backend.CacheAttachments;
import io.sparkinfer.backend.KvCache;
import java.util.List;
import java.util.function.Supplier;

/**
 * A batch's KV cache split as the model is: one {@link KvCache} per shard (its stage's layers, its share of the
 * key/value heads), on the shard's device, in stage then shard order.
 */
final class ShardedCache implements BatchCache {

  private final List<KvCache> shards;
  private final int batchSize;
  private final int capacity;
  private final CacheAttachments attachments = new CacheAttachments();

  ShardedCache(List<KvCache> shards, int batchSize, int capacity) {
    this.shards = List.copyOf(shards);
    this.batchSize = batchSize;
    this.capacity = capacity;
  }

  static ShardedCache of(BatchCache cache) {
    if (cache instanceof ShardedCache s) {
      return s;
    }
    throw new IllegalArgumentException("a sharded model runs on its own cache, got " + cache.getClass().getName());
  }

  KvCache shard(int i) {
    return shards.get(i);
  }

  @Override
  public int batchSize() {
    return batchSize;
  }

  @Override
  public int capacity() {
    return capacity;
  }

  @Override
  public void copyRowsFrom(BatchCache from, long[] dstRows, int length) {
    ShardedCache src = of(from);
    for (int i = 0; i < shards.size(); i++) {
      shards.get(i).copyRowsFrom(src.shards.get(i), dstRows, length);
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
      shards.forEach(KvCache::close);
    }
  }
}
