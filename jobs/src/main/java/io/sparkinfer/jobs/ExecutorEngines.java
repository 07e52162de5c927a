package io.sparkinfer.jobs;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.tokenizer.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The per-executor cache: one engine per model and {@link EngineOptions} for the executor JVM's lifetime, shared by all its tasks and reused across stages and jobs; one tokenizer per
 * model for planning. Everything is closed when the JVM stops (executor shutdown), or by {@link #closeAll()}.
 *
 * <p>Loads are counted ({@link #loadCount()}) and reported to the driver by the loading task, so the
 * driver can check "one load per executor" rather than assume it.
 */
public final class ExecutorEngines {

  private static final Logger LOG = LoggerFactory.getLogger(ExecutorEngines.class);

  /**
   * What identifies a loaded engine: the model's URI (its local copy differs between executors) and the
   * options that decide what is loaded ({@link EngineOptions#forLoading()}): runs that differ only in the
   * generation loop's options (batch size, greedy chunk, ...) share one engine.
   */
  public record Key(String modelUri, EngineOptions options) {
    public Key {
      options = options.forLoading();
    }
  }

  /** A planning tokenizer and the prompt-length limit its model allows. */
  public record PlanningTokenizer(TextTokenizer tokenizer, int contextLength) {}

  private static final class Slot<T> {
    T value;
  }

  private static final Map<Key, Slot<LlmEngine>> ENGINES = new ConcurrentHashMap<>();
  private static final Map<Path, Slot<PlanningTokenizer>> TOKENIZERS = new ConcurrentHashMap<>();
  private static final AtomicInteger LOADS = new AtomicInteger();

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(ExecutorEngines::closeAll, "sparkinfer-close-engines"));
  }

  private ExecutorEngines() {}

  /**
   * The engine for {@code key}, loading (and warming up) it on first use in this JVM. {@code onLoad}
   * is told of a load this call performed, with its seconds.
   */
  public static LlmEngine engine(Key key, LoadListener onLoad) {
    Slot<LlmEngine> slot = ENGINES.computeIfAbsent(key, k -> new Slot<>());
    synchronized (slot) {
      if (slot.value == null) {
        long start = System.nanoTime();
        LlmEngine engine = LlmEngine.load(key.options());
        try {
          warmUp(engine);
        } catch (RuntimeException e) {
          engine.close();
          throw e;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        int n = LOADS.incrementAndGet();
        LOG.info("loaded {} in {} s (load #{} in this JVM; libtorch from {})", engine.describe(),
            String.format("%.2f", seconds), n, JobMetrics.libtorchDir());
        slot.value = engine;
        onLoad.loaded(key, engine, seconds);
      }
      return slot.value;
    }
  }

  /** The planning tokenizer of a local checkpoint directory. */
  public static PlanningTokenizer tokenizer(Path modelDir) {
    Slot<PlanningTokenizer> slot = TOKENIZERS.computeIfAbsent(modelDir.toAbsolutePath().normalize(), k -> new Slot<>());
    synchronized (slot) {
      if (slot.value == null) {
        ModelConfig config = ModelConfig.load(modelDir);
        slot.value = new PlanningTokenizer(TextTokenizer.load(modelDir), config.maxPositionEmbeddings());
      }
      return slot.value;
    }
  }

  /** Engine loads performed by this JVM since it started. */
  public static int loadCount() {
    return LOADS.get();
  }

  /** Closes and forgets every cached engine and tokenizer (JVM shutdown; the end of a local-mode job). */
  public static void closeAll() {
    List<AutoCloseable> toClose = new ArrayList<>();
    for (Slot<LlmEngine> slot : ENGINES.values()) {
      synchronized (slot) {
        if (slot.value != null) {
          toClose.add(slot.value);
          slot.value = null;
        }
      }
    }
    for (Slot<PlanningTokenizer> slot : TOKENIZERS.values()) {
      synchronized (slot) {
        if (slot.value != null) {
          toClose.add(slot.value.tokenizer());
          slot.value = null;
        }
      }
    }
    ENGINES.clear();
    TOKENIZERS.clear();
    for (AutoCloseable c : toClose) {
      try {
        c.close();
      } catch (Exception e) {
        LOG.warn("closing {} failed", c, e);
      }
    }
  }

  /** One short greedy generation, so the first batch of real work does not pay for lazy initialisation. */
  private static void warmUp(LlmEngine engine) {
    engine.generate(List.of(GenerationRequest.greedy("warmup", "Hello", 2)), 1);
  }

  /** Told of each engine load. */
  @FunctionalInterface
  public interface LoadListener {
    void loaded(Key key, LlmEngine engine, double seconds);
  }
}
