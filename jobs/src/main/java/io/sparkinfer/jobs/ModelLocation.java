package io.sparkinfer.jobs;

import io.sparkinfer.base.FileTrees;
import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.engine.ModelCheck;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;

/**
 * Where a checkpoint directory lives: a local path (on every node, or shared storage mounted on every node),
 * or a Hadoop URI ({@code hdfs:}, {@code s3a:}) that each executor copies once to a local cache directory.
 */
public final class ModelLocation implements Serializable {

  private static final String COMPLETE_MARKER = ".sparkinfer-complete";

  /** Checks of a local model's files in this JVM: each reads its config, weights' headers and tokenizer. */
  private static final AtomicInteger LOCAL_CHECKS = new AtomicInteger();

  private final String uri;
  private final String cacheDir;
  private transient Configuration hadoopConf;

  private ModelLocation(String uri, String cacheDir, Configuration hadoopConf) {
    this.uri = uri;
    this.cacheDir = cacheDir;
    this.hadoopConf = hadoopConf;
  }

  /**
   * Checks on the driver that {@code model} names a checkpoint directory, failing with a message that names it
   * and the problem. A local checkpoint is checked whole without loading it ({@link ModelCheck}: config.json,
   * safetensors headers against it, tokenizer, every file inside the directory), so a bad model fails before
   * any Spark work; a remote one the same way, through a local stand-in of its files that holds the weights'
   * headers but not their tensors ({@link ModelStandIn}).
   *
   * @param cacheDir where executors copy a remote model ({@code --model-cache}); null for java.io.tmpdir
   */
  public static ModelLocation check(String model, Configuration hadoopConf, String cacheDir) {
    ModelLocation location = new ModelLocation(model, cacheDir, isLocal(model) ? null : new Configuration(hadoopConf));
    if (location.hadoopConf == null) {
      LOCAL_CHECKS.incrementAndGet();
      Path dir = localPath(model);
      if (!Files.isDirectory(dir)) {
        throw new IllegalArgumentException("--model " + model + ": no such directory");
      }
      if (!Files.isRegularFile(dir.resolve("config.json"))) {
        throw new IllegalArgumentException("--model " + model + ": not a Hugging Face checkpoint (no config.json)");
      }
      try {
        ModelCheck.check(dir);
      } catch (ModelLoadException e) {
        throw new IllegalArgumentException("--model " + model + ": " + e.getMessage(), e);
      }
    } else {
      org.apache.hadoop.fs.Path config = new org.apache.hadoop.fs.Path(model, "config.json");
      try {
        FileSystem fs = config.getFileSystem(hadoopConf);
        if (!fs.exists(config)) {
          throw new IllegalArgumentException("--model " + model + ": no config.json there");
        }
        try (ModelStandIn standIn = ModelStandIn.of(model, hadoopConf)) {
          try {
            ModelCheck.check(standIn.dir());
          } catch (ModelLoadException e) {
            throw new IllegalArgumentException("--model " + model + ": " + standIn.toRemote(e.getMessage()), e);
          }
        }
      } catch (IOException e) {
        throw new IllegalArgumentException("--model " + model + ": cannot read it: " + e.getMessage(), e);
      }
    }
    return location;
  }

  /** Checks of a local model's files made in this JVM (a test counts them). */
  static int localChecks() {
    return LOCAL_CHECKS.get();
  }

  /** The model as the user named it (written to the completions' {@code model} column). */
  public String uri() {
    return uri;
  }

  /** Whether the model is read in place (no copy). */
  public boolean isLocal() {
    return hadoopConf == null;
  }

  /** The Hadoop configuration a remote model is read with; null for a local one. */
  Configuration hadoopConf() {
    return hadoopConf;
  }

  /** The checkpoint as a local directory; on executors a remote one is copied once per node and reused. */
  public Path localDir() {
    return isLocal() ? localPath(uri) : fetch();
  }

  public static boolean isLocal(String model) {
    String scheme = URI.create(model.replace(" ", "%20")).getScheme();
    return scheme == null || scheme.equals("file") || scheme.length() == 1; // a Windows drive letter
  }

  private static Path localPath(String model) {
    return model.startsWith("file:") ? Path.of(URI.create(model)) : Path.of(model);
  }

  private Path fetch() {
    Path cacheRoot = Path.of(cacheDir != null ? cacheDir : System.getProperty("java.io.tmpdir"), "sparkinfer-models");
    Path target = cacheRoot.resolve(sha256(uri).substring(0, 16));
    synchronized (ModelLocation.class) {
      if (Files.isRegularFile(target.resolve(COMPLETE_MARKER))) {
        return target;
      }
      Path staging = cacheRoot.resolve(target.getFileName() + ".tmp-" + UUID.randomUUID());
      try {
        Files.createDirectories(staging);
        org.apache.hadoop.fs.Path source = new org.apache.hadoop.fs.Path(uri);
        FileSystem fs = source.getFileSystem(hadoopConf);
        for (FileStatus f : fs.listStatus(source)) {
          if (f.isFile()) {
            try (var in = fs.open(f.getPath())) {
              Files.copy(in, staging.resolve(f.getPath().getName()), StandardCopyOption.REPLACE_EXISTING);
            }
          }
        }
        Files.writeString(staging.resolve(COMPLETE_MARKER), uri, StandardCharsets.UTF_8);
        if (Files.exists(target)) {
          FileTrees.delete(target); // an earlier copy that did not complete
        }
        Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
        return target;
      } catch (IOException e) {
        throw new ModelLoadException("cannot copy the checkpoint " + uri + " to " + target + ": " + e.getMessage(), e);
      }
    }
  }

  private static String sha256(String s) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  private void writeObject(ObjectOutputStream out) throws IOException {
    out.defaultWriteObject();
    out.writeBoolean(hadoopConf != null);
    if (hadoopConf != null) {
      hadoopConf.write(out);
    }
  }

  private void readObject(ObjectInputStream in) throws IOException, ClassNotFoundException {
    in.defaultReadObject();
    if (in.readBoolean()) {
      hadoopConf = new Configuration(false);
      hadoopConf.readFields(in);
    }
  }

  @Override
  public String toString() {
    return uri; // never the Hadoop configuration: it may hold credentials
  }
}
