package io.sparkinfer.jobs.sweep;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Samples one GPU's utilization and memory in use while a trial runs, with {@code nvidia-smi --query-gpu
 * ... -lms}: a process beside the trial, read on a thread of its own. Where {@code nvidia-smi} is missing the
 * monitor reads nothing and its values are null. Memory is the whole device's, other processes included.
 */
final class GpuMonitor implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(GpuMonitor.class);
  static final int PERIOD_MS = 200;

  private final Process process;
  private final Thread reader;
  private final List<double[]> samples = new ArrayList<>(); // (utilization %, memory MiB)

  private GpuMonitor(Process process) {
    this.process = process;
    this.reader = new Thread(this::read, "sparkinfer-gpu-monitor");
    reader.setDaemon(true);
    reader.start();
  }

  /** Starts sampling GPU {@code index}; null when nvidia-smi cannot be started. */
  static GpuMonitor start(int index) {
    try {
      Process p = new ProcessBuilder("nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
          "--format=csv,noheader,nounits", "-i", Integer.toString(index), "-lms", Integer.toString(PERIOD_MS))
          .redirectErrorStream(true).start();
      return new GpuMonitor(p);
    } catch (IOException e) {
      LOG.info("no GPU utilization for the sweep: nvidia-smi cannot start ({})", e.getMessage());
      return null;
    }
  }

  /** The GPU's name, driver and how many GPUs the machine has, or null when nvidia-smi cannot tell. */
  static TrialResult.Gpu describe(int index) {
    try {
      Process p = new ProcessBuilder("nvidia-smi", "--query-gpu=index,name,driver_version", "--format=csv,noheader")
          .redirectErrorStream(true).start();
      List<String> lines = new ArrayList<>();
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line = r.readLine(); line != null; line = r.readLine()) {
          lines.add(line);
        }
      }
      if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
        return null;
      }
      for (String line : lines) {
        String[] f = line.split(",\\s*");
        if (f.length >= 3 && f[0].trim().equals(Integer.toString(index))) {
          return new TrialResult.Gpu(f[1].trim(), f[2].trim(), lines.size());
        }
      }
      return null;
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  private void read() {
    try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = r.readLine(); line != null; line = r.readLine()) {
        String[] f = line.split(",\\s*");
        if (f.length == 2) {
          try {
            double[] s = {Double.parseDouble(f[0].trim()), Double.parseDouble(f[1].trim())};
            synchronized (samples) {
              samples.add(s);
            }
          } catch (NumberFormatException e) {
            // "[N/A]" or a message: not a sample
          }
        }
      }
    } catch (IOException e) {
      // the process ended
    }
  }

  /** Mean utilization (%), or null without samples. */
  Double meanUtilization() {
    return stat(0, false);
  }

  /** Mean memory in use (MiB), or null. */
  Double meanMemoryMb() {
    return stat(1, false);
  }

  /** The most memory in use (MiB), or null. */
  Double peakMemoryMb() {
    return stat(1, true);
  }

  private Double stat(int column, boolean max) {
    synchronized (samples) {
      if (samples.isEmpty()) {
        return null;
      }
      double acc = max ? Double.NEGATIVE_INFINITY : 0;
      for (double[] s : samples) {
        acc = max ? Math.max(acc, s[column]) : acc + s[column];
      }
      return max ? acc : acc / samples.size();
    }
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(2, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
      reader.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
