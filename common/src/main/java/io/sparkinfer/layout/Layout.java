package io.sparkinfer.layout;

import io.sparkinfer.model.ModelConfig;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * How one engine spreads over a task's devices ({@code --layout replicas=R,tp=T,pp=P,threads=N}): {@code replicas}
 * whole copies of the model, each split into {@code pp} pipeline stages of consecutive layers, each stage split
 * into {@code tp} tensor-parallel shards (Hugging Face's plan: q/k/v and gate/up by columns, that is by heads;
 * o and down by rows, their partial sums added; the LM head by vocabulary rows; the KV cache by key/value
 * heads); and {@code threads} decode threads per replica, each with its own batch. A replica takes
 * {@code tp * pp} devices.
 *
 * @param auto whether the layout was {@code auto} ({@link #resolve} decides it from the model and the devices)
 */
public record Layout(int replicas, int tp, int pp, int threads, boolean auto) implements Serializable {

  private static final long serialVersionUID = 1L;

  /** One replica on one device, one thread: what a task does unless told otherwise. */
  public static final Layout SINGLE = new Layout(1, 1, 1, 1, false);
  public static final Layout AUTO = new Layout(1, 1, 1, 1, true);
  /** Decode threads per GPU at most: an earlier probe hung with 8 threads on one GPU, and 2 already fill it. */
  public static final int MAX_GPU_THREADS = 4;
  static final int MAX_PARTS = 64;

  public Layout {
    for (int[] v : new int[][] {{replicas, 0}, {tp, 1}, {pp, 2}, {threads, 3}}) {
      if (v[0] < 1 || v[0] > MAX_PARTS) {
        throw new IllegalArgumentException(new String[] {"replicas", "tp", "pp", "threads"}[v[1]] + " must be in [1, "
            + MAX_PARTS + "], got " + v[0]);
      }
    }
  }

  /**
   * Parses {@code auto}, or {@code key=value} pairs joined by commas with keys {@code replicas}, {@code tp},
   * {@code pp}, {@code threads} (each at most once; absent ones are 1).
   *
   * @throws IllegalArgumentException with a "must be ..." reason
   */
  public static Layout parse(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    if (t.equals("auto")) {
      return AUTO;
    }
    int[] v = {1, 1, 1, 1};
    boolean[] seen = new boolean[4];
    List<String> keys = List.of("replicas", "tp", "pp", "threads");
    for (String part : t.split(",")) {
      String[] kv = part.split("=", 2);
      int k = keys.indexOf(kv[0].trim());
      if (kv.length != 2 || k < 0) {
        throw new IllegalArgumentException("must be auto or replicas=R,tp=T,pp=P,threads=N (any of them)");
      }
      if (seen[k]) {
        throw new IllegalArgumentException("must name " + keys.get(k) + " once");
      }
      seen[k] = true;
      try {
        v[k] = Integer.parseInt(kv[1].trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("must give " + keys.get(k) + " as an integer");
      }
    }
    return new Layout(v[0], v[1], v[2], v[3], false);
  }

  /** The text {@link #parse} reads back, as the tables record it: {@code replicas=1,tp=2,pp=1,threads=1}. */
  public String label() {
    return auto ? "auto" : "replicas=" + replicas + ",tp=" + tp + ",pp=" + pp + ",threads=" + threads;
  }

  /** One replica of this layout: what one engine runs. */
  public Layout perReplica() {
    return new Layout(1, tp, pp, threads, auto);
  }

  /** Devices one replica takes. */
  public int devicesPerReplica() {
    return tp * pp;
  }

  /** Whether a replica is split (tensor or pipeline parallel). */
  public boolean isSharded() {
    return tp > 1 || pp > 1;
  }

  /**
   * Checks the layout against the model and the devices, before anything loads: {@code replicas * tp * pp}
   * devices (on a CPU, or on one GPU for checks, every shard may share the one device), heads and the MLP width
   * divisible by {@code tp}, at most one stage per layer, and threads per GPU bounded.
   *
   * @param devices the devices at hand: the GPUs Spark assigned to the task, or 1 for the CPU
   * @param gpu whether they are GPUs
   * @throws IllegalArgumentException naming the numbers
   */
  public void validate(ModelConfig config, int devices, boolean gpu) {
    if (auto) {
      throw new IllegalArgumentException("resolve an auto layout before validating it");
    }
    int needed = replicas * tp * pp;
    if (gpu && devices != needed && devices != 1) {
      throw new IllegalArgumentException("layout " + label() + " needs replicas * tp * pp = " + needed
          + " GPUs, but " + devices + " are at hand");
    }
    if (config.numAttentionHeads() % tp != 0 || config.numKeyValueHeads() % tp != 0) {
      throw new IllegalArgumentException("tp=" + tp + " must divide the query heads (" + config.numAttentionHeads()
          + ") and the key/value heads (" + config.numKeyValueHeads() + ")");
    }
    if (config.intermediateSize() % tp != 0) {
      throw new IllegalArgumentException("tp=" + tp + " must divide the MLP width (intermediate_size "
          + config.intermediateSize() + ")");
    }
    if (pp > config.numHiddenLayers()) {
      throw new IllegalArgumentException("pp=" + pp + " stages need at least as many layers, the model has "
          + config.numHiddenLayers());
    }
    int threadsPerGpu = devices == needed ? threads : replicas * threads; // one GPU holds every replica, or its own
    if (gpu && threadsPerGpu > MAX_GPU_THREADS) {
      throw new IllegalArgumentException("layout " + label() + " runs " + threadsPerGpu + " decode threads on a GPU, "
          + "more than " + MAX_GPU_THREADS + " (an earlier probe hung with 8 on one GPU)");
    }
  }

  /**
   * The layers of each pipeline stage, split as evenly as possible (earlier stages take the extra layer):
   * {@code [first, end)} per stage.
   */
  public List<int[]> stageLayers(int layers) {
    List<int[]> out = new ArrayList<>();
    int base = layers / pp;
    int extra = layers % pp;
    int at = 0;
    for (int s = 0; s < pp; s++) {
      int n = base + (s < extra ? 1 : 0);
      out.add(new int[] {at, at + n});
      at += n;
    }
    return out;
  }

  /**
   * The layout {@code auto} stands for: the fewest devices whose memory holds the weights with room for a useful
   * KV cache (a quarter of each device beside its share), as pipeline stages (the simplest split), and replicas
   * on the devices left; on a CPU, one replica. Other layouts are returned as they are.
   *
   * @param weightBytes the weights' bytes in the compute dtype
   * @param deviceBytes each device's memory in bytes (0 for a CPU)
   */
  public Layout resolve(ModelConfig config, int devices, long weightBytes, long deviceBytes) {
    if (!auto) {
      return this;
    }
    if (deviceBytes <= 0 || devices <= 1) {
      return SINGLE;
    }
    int per = 1;
    while (per <= devices && (weightBytes / per > deviceBytes * 3 / 4 || devices % per != 0)) {
      per++;
    }
    if (per > devices || per > config.numHiddenLayers()) {
      throw new IllegalArgumentException("layout auto: the weights (" + weightBytes / (1 << 20) + " MiB) do not fit "
          + devices + " devices of " + deviceBytes / (1 << 20) + " MiB with room for a KV cache");
    }
    return new Layout(devices / per, 1, per, 1, false);
  }
}
