package io.sparkinfer.jobs;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A checkpoint's identity by content, whatever its path: SHA-256 over the lines {@code name \t bytes \t sha256}
 * of its files in name order, each file's own SHA-256 over every byte of it. The files are every regular file
 * at the top of the checkpoint directory (weights, config.json, generation_config.json, the tokenizer's files)
 * but hidden ones ({@code .x}) and documentation ({@code *.md}, {@code LICENSE*}): the same weights copied
 * elsewhere give the same fingerprint, and a file replaced at the same path gives another.
 *
 * <p>Computed on the driver, once per run, reading the whole checkpoint (a local directory, or {@code hdfs:} and
 * {@code s3a:} through Hadoop's FileSystem), up to {@link #THREADS} files at once.
 */
final class ModelFingerprint {

  private static final Logger LOG = LoggerFactory.getLogger(ModelFingerprint.class);

  /** Files hashed at once (the shards of a large checkpoint). */
  static final int THREADS = 4;

  private static final int BUFFER = 1 << 20;

  private ModelFingerprint() {}

  /** A file of the checkpoint, opened when hashed. */
  private interface Source {
    String name();

    long bytes();

    InputStream open() throws IOException;
  }

  /** The fingerprint of {@code model} (a local path or an hdfs:/s3a: URI), logged with the seconds it took. */
  static String of(ModelLocation model) {
    long start = System.nanoTime();
    String fingerprint = model.isLocal() ? ofLocal(model.localDir()) : ofHadoop(model.uri(), model.hadoopConf());
    LOG.info("model {}: fingerprint {} ({} s)", model.uri(), fingerprint,
        String.format(Locale.ROOT, "%.2f", (System.nanoTime() - start) / 1e9));
    return fingerprint;
  }

  /** The fingerprint of a local checkpoint directory. */
  static String ofLocal(Path dir) {
    List<Source> files = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.sorted().toList()) {
        String name = p.getFileName().toString();
        if (counts(name) && Files.isRegularFile(p)) { // follows links (a Hugging Face cache snapshot)
          long bytes = Files.size(p);
          files.add(new Source() {
            public String name() {
              return name;
            }

            public long bytes() {
              return bytes;
            }

            public InputStream open() throws IOException {
              return Files.newInputStream(p);
            }
          });
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list the checkpoint " + dir + ": " + e.getMessage(), e);
    }
    return combine(dir.toString(), files);
  }

  /** The fingerprint of a checkpoint directory on a Hadoop file system ({@code hdfs:}, {@code s3a:}, {@code file:}). */
  static String ofHadoop(String uri, Configuration conf) {
    org.apache.hadoop.fs.Path dir = new org.apache.hadoop.fs.Path(uri);
    List<Source> files = new ArrayList<>();
    try {
      FileSystem fs = dir.getFileSystem(conf);
      List<FileStatus> listed = new ArrayList<>(List.of(fs.listStatus(dir)));
      listed.sort((a, b) -> a.getPath().getName().compareTo(b.getPath().getName()));
      for (FileStatus f : listed) {
        String name = f.getPath().getName();
        if (f.isFile() && counts(name)) {
          files.add(new Source() {
            public String name() {
              return name;
            }

            public long bytes() {
              return f.getLen();
            }

            public InputStream open() throws IOException {
              return fs.open(f.getPath());
            }
          });
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list the checkpoint " + uri + ": " + e.getMessage(), e);
    }
    return combine(uri, files);
  }

  /** Whether a file of the directory is part of the fingerprint. */
  static boolean counts(String name) {
    String lower = name.toLowerCase(Locale.ROOT);
    return !name.startsWith(".") && !lower.endsWith(".md") && !lower.startsWith("license");
  }

  private static String combine(String where, List<Source> files) {
    if (files.isEmpty()) {
      throw new IllegalArgumentException("--model " + where + ": no files to fingerprint");
    }
    ExecutorService pool = Executors.newFixedThreadPool(Math.min(THREADS, files.size()), r -> {
      Thread t = new Thread(r, "sparkinfer-fingerprint");
      t.setDaemon(true);
      return t;
    });
    try {
      List<Future<String>> hashes = new ArrayList<>();
      for (Source f : files) {
        hashes.add(pool.submit(() -> sha256(f)));
      }
      StringBuilder lines = new StringBuilder();
      for (int i = 0; i < files.size(); i++) {
        lines.append(files.get(i).name()).append('\t').append(files.get(i).bytes()).append('\t')
            .append(hashes.get(i).get()).append('\n');
      }
      return hex(digest().digest(lines.toString().getBytes(StandardCharsets.UTF_8)));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while fingerprinting " + where, e);
    } catch (ExecutionException e) {
      throw new UncheckedIOException("cannot read the checkpoint " + where + " to fingerprint it: "
          + e.getCause().getMessage(), e.getCause() instanceof IOException io ? io : new IOException(e.getCause()));
    } finally {
      pool.shutdownNow();
    }
  }

  private static String sha256(Source f) throws IOException {
    MessageDigest digest = digest();
    byte[] buffer = new byte[BUFFER];
    try (InputStream in = f.open()) {
      for (int n; (n = in.read(buffer)) >= 0; ) {
        digest.update(buffer, 0, n);
      }
    }
    return hex(digest.digest());
  }

  static MessageDigest digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  static String hex(byte[] bytes) {
    return HexFormat.of().formatHex(bytes);
  }
}
