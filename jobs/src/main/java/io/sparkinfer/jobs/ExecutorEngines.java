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
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The per-executor cache: one engine per model and {@link EngineOptions} for the executor JVM's lifetime, shared by all its tasks and reused across stages and jobs; one tokenizer per
 * model for planning. Everything is closed by {@link #closeAll()} (at the end of a local-mode job). Nothing is closed
 * when the JVM stops: tasks may still be using them then (an executor killed, a job stopped with Ctrl-C), and freeing
 * their native memory under them crashed the JVM (SIGSEGV in libtokenizers); the process's exit frees it all.
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
    volatile T value; // written under the slot's lock; read without it by preload
    /** A preload's seconds, until a task's {@link #engine} call reports them; negative when none is pending. */
    double unreportedSeconds = -1;
    /** A preload is started and not yet done: claimed without the lock, which the preload holds while it loads. */
    final AtomicBoolean preloading = new AtomicBoolean();
  }

  /** Background loads ({@link #preload}): daemon threads, so a JVM that ends does not wait for them. */
  private static final ExecutorService PRELOADS = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "sparkinfer-preload");
    t.setDaemon(true);
    return t;
  });

  private static final Map<Key, Slot<LlmEngine>> ENGINES = new ConcurrentHashMap<>();
  private static final Map<Path, Slot<PlanningTokenizer>> TOKENIZERS = new ConcurrentHashMap<>();
  private static final AtomicInteger LOADS = new AtomicInteger();
  private static final AtomicInteger PRELOADS_STARTED = new AtomicInteger();

  private ExecutorEngines() {}

  /**
   * The engine for {@code key}, loading (and warming up) it on first use in this JVM. {@code onLoad}
   * is told of a load this call performed, with its seconds.
   */
  public static LlmEngine engine(Key key, LoadListener onLoad) {
    Slot<LlmEngine> slot = ENGINES.computeIfAbsent(key, k -> new Slot<>());
    synchronized (slot) { // a preload in progress holds the slot: this waits for it
      if (slot.value == null) {
        double seconds = load(key, slot);
        onLoad.loaded(key, slot.value, seconds);
      } else if (slot.unreportedSeconds >= 0) { // loaded ahead by a preload: its first user reports it
        onLoad.loaded(key, slot.value, slot.unreportedSeconds);
      }
      slot.unreportedSeconds = -1;
      return slot.value;
    }
  }

  /**
   * Starts loading the engine for {@code key} on a background thread, unless it is loaded or loading, so that the
   * load overlaps the work before inference (reading, token counts, the sort). The next {@link #engine} call for
   * the key waits for it and reports it as its own load. A preload that fails is logged and forgotten: the
   * inference task then loads the engine itself and fails, or not, as it would have without the preload.
   */
  public static void preload(Key key) {
    Slot<LlmEngine> slot = ENGINES.computeIfAbsent(key, k -> new Slot<>());
    // Not under the slot's lock: a preload holds it while it loads, and each planning task asks for the preload
    // again (all but the first used to wait out the load: 4 of a planning stage's 4.1 s on an H200)
    if (slot.value != null || !slot.preloading.compareAndSet(false, true)) {
      return;
    }
    PRELOADS_STARTED.incrementAndGet();
    PRELOADS.execute(() -> {
      try {
        synchronized (slot) {
          if (slot.value == null && ENGINES.get(key) == slot) { // not loaded meanwhile, nor closed by closeAll()
            slot.unreportedSeconds = load(key, slot);
          }
        }
      } catch (RuntimeException | Error e) {
        LOG.warn("preloading {} failed; the inference task loads it again", key.modelUri(), e);
      } finally {
        slot.preloading.set(false);
      }
    });
  }

  /** Runs {@code work} on a preload thread (a daemon); the future says when it ended. */
  static Future<?> inBackground(Runnable work) {
    return PRELOADS.submit(work);
  }

  /** Loads and warms up the engine for {@code key} into {@code slot} (whose lock the caller holds); its seconds. */
  private static double load(Key key, Slot<LlmEngine> slot) {
    long start = System.nanoTime();
    LibtorchThreads.beforeFirstLoad(key.options());
    LlmEngine engine = LlmEngine.load(key.options());
    long warmUpStart = System.nanoTime();
    try {
      warmUp(engine);
    } catch (RuntimeException e) {
      engine.close();
      throw e;
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    int n = LOADS.incrementAndGet();
    LOG.info("loaded {} in {} s ({}, warm-up {} s; load #{} in this JVM; libtorch from {})", engine.describe(),
        String.format("%.2f", seconds), engine.loadPhases(), String.format("%.1f", (System.nanoTime() - warmUpStart)
            / 1e9), n, JobMetrics.libtorchDir());
    slot.value = engine;
    return seconds;
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

  /** Whether planning's tokenizer of {@code modelDir} is loaded in this JVM. */
  static boolean tokenizerLoaded(Path modelDir) {
    Slot<PlanningTokenizer> slot = TOKENIZERS.get(modelDir.toAbsolutePath().normalize());
    if (slot == null) {
      return false;
    }
    synchronized (slot) {
      return slot.value != null;
    }
  }

  /** Preloads started by this JVM since it started (each one loads at most once). */
  public static int preloadCount() {
    return PRELOADS_STARTED.get();
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
