package io.sparkinfer.jobs;

import io.sparkinfer.base.FileTrees;
import io.sparkinfer.safetensors.SafetensorsFile;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;

/**
 * A local stand-in of a remote checkpoint directory ({@code hdfs:}, {@code s3a:}), so the driver can check it
 * with {@link io.sparkinfer.engine.ModelCheck} without downloading its weights: the small files the engine reads
 * are copied, each safetensors file is reduced to its 8-byte length and its header (at most
 * {@link SafetensorsFile#MAX_HEADER_BYTES}) at its true length, the rest a sparse hole that takes no disk and that
 * the check never reads, and pickle weights are kept as empty files under their names (the check goes by name).
 * A file over {@link #MAX_COPY_BYTES} is not read: its stand-in is a hole of its length, which the check's own
 * size bounds refuse. Close it to delete it.
 */
final class ModelStandIn implements AutoCloseable {

  /** Most bytes of one small file copied: the largest bound the check puts on a file it reads whole. */
  static final long MAX_COPY_BYTES = 256L << 20;

  private static final Set<String> COPIED = Set.of("config.json", "generation_config.json", "tokenizer.json",
      "model.safetensors.index.json");
  private static final Set<String> PICKLE_EXTENSIONS = Set.of(".bin", ".pt", ".pth", ".ckpt", ".pkl");

  private final String uri;
  private final Path dir;

  private ModelStandIn(String uri, Path dir) {
    this.uri = uri.replaceAll("/+$", "");
    this.dir = dir;
  }

  /** The stand-in of the checkpoint directory at {@code uri}, in a new temporary directory. */
  static ModelStandIn of(String uri, Configuration hadoopConf) throws IOException {
    ModelStandIn standIn = new ModelStandIn(uri, Files.createTempDirectory("sparkinfer-model-check-"));
    try {
      org.apache.hadoop.fs.Path source = new org.apache.hadoop.fs.Path(uri);
      FileSystem fs = source.getFileSystem(hadoopConf);
      for (FileStatus f : fs.listStatus(source)) {
        if (f.isFile()) {
          standIn.add(fs, f);
        }
      }
      return standIn;
    } catch (IOException | RuntimeException e) {
      standIn.close();
      throw e;
    }
  }

  private void add(FileSystem fs, FileStatus f) throws IOException {
    String name = f.getPath().getName();
    Path local = dir.resolve(name);
    String lower = name.toLowerCase(Locale.ROOT);
    if (COPIED.contains(name)) {
      if (f.getLen() > MAX_COPY_BYTES) {
        hole(local, new byte[0], f.getLen());
      } else {
        try (InputStream in = fs.open(f.getPath())) {
          Files.copy(in, local, StandardCopyOption.REPLACE_EXISTING);
        }
      }
    } else if (lower.endsWith(".safetensors")) {
      hole(local, header(fs, f), f.getLen());
    } else if (PICKLE_EXTENSIONS.stream().anyMatch(lower::endsWith)) {
      Files.createFile(local);
    }
  }

  /**
   * A safetensors file's first bytes: its 8-byte length and its header when the length is within bounds and the
   * file, else only the bytes up to 8 (the check then refuses the length as it would the real file's).
   */
  private static byte[] header(FileSystem fs, FileStatus f) throws IOException {
    try (FSDataInputStream in = fs.open(f.getPath())) {
      byte[] prefix = new byte[(int) Math.min(8, f.getLen())];
      in.readFully(0, prefix);
      if (prefix.length < 8) {
        return prefix;
      }
      long length = ByteBuffer.wrap(prefix).order(ByteOrder.LITTLE_ENDIAN).getLong();
      if (length <= 0 || length > SafetensorsFile.MAX_HEADER_BYTES || 8 + length > f.getLen()) {
        return prefix;
      }
      byte[] bytes = new byte[(int) (8 + length)];
      in.readFully(0, bytes);
      return bytes;
    }
  }

  /** A file of {@code length} bytes that starts with {@code bytes}, the rest a hole. */
  private static void hole(Path file, byte[] bytes, long length) throws IOException {
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      raf.write(bytes);
      raf.setLength(length);
    }
  }

  /** The local directory to check. */
  Path dir() {
    return dir;
  }

  /** {@code message} with the stand-in's paths as the remote files' URIs. */
  String toRemote(String message) {
    String out = message;
    try {
      out = out.replace(dir.toRealPath().toString(), uri);
    } catch (IOException e) {
      // the plain path below still applies
    }
    return out.replace(dir.toString(), uri);
  }

  @Override
  public void close() {
    try {
      FileTrees.delete(dir);
    } catch (IOException e) {
      dir.toFile().deleteOnExit();
    }
  }
}
