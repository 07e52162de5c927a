package io.sparkinfer.torchscript;

import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkinfer.base.ModelLoadException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Builds a TorchScript archive (what {@code torch.jit.save} writes and {@code torch::jit::load} reads) from
 * TorchScript source text, so the project's kernels need no Python to be produced: an archive is a zip of
 * the module's code ({@code code/__torch__.py}), a pickle of the module object ({@code data.pkl}: the
 * class and its {@code training} flag; these modules hold no tensors), an empty constants pickle and a
 * format version.
 */
public final class TorchScriptArchive {

  /** The archive format version written (libtorch 2.5 reads 1 to 10). */
  static final String FILE_FORMAT_VERSION = "3";

  private TorchScriptArchive() {}

  /** Reads a kernel's source from the classpath (e.g. {@code /io/sparkinfer/backend/scripted/llama_step.py}). */
  public static String source(String resource) {
    try (InputStream in = TorchScriptArchive.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("kernel source " + resource + " is missing from the classpath");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot read kernel source " + resource + ": " + e.getMessage(), e);
    }
  }

  /**
   * Loads the module that {@code resource} (TorchScript source defining {@code class className(Module)})
   * declares, on the manager's device.
   *
   * @throws ModelLoadException when libtorch cannot load it
   */
  public static PtSymbolBlock load(PtNDManager manager, String className, String resource) {
    byte[] archive = build(className, source(resource));
    try {
      return JniUtils.loadModule(manager, new ByteArrayInputStream(archive), true, false);
    } catch (IOException | RuntimeException e) {
      throw new ModelLoadException("cannot load the TorchScript module " + resource + ": " + e.getMessage(), e);
    }
  }

  /**
   * The bytes of an archive holding one module class.
   *
   * @param className the class the source defines, e.g. {@code LlamaStep} (qualified as {@code __torch__.LlamaStep})
   * @param source TorchScript source defining {@code class className(Module)}
   */
  public static byte[] build(String className, String source) {
    String root = className.toLowerCase(java.util.Locale.ROOT) + "/";
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      stored(zip, root + "data.pkl", modulePickle(className));
      stored(zip, root + "code/__torch__.py", source.getBytes(StandardCharsets.UTF_8));
      stored(zip, root + "constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'}); // protocol 2, (), stop
      stored(zip, root + "version", (FILE_FORMAT_VERSION + "\n").getBytes(StandardCharsets.US_ASCII));
      stored(zip, root + "byteorder", "little".getBytes(StandardCharsets.US_ASCII));
    } catch (IOException e) {
      throw new IllegalStateException("writing to memory cannot fail", e);
    }
    return bytes.toByteArray();
  }

  /**
   * {@code __torch__.<className>()} with state {@code {"training": False}}, pickled as libtorch's pickler
   * writes modules: GLOBAL, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK, key, value, SETITEMS, BUILD, STOP.
   */
  static byte[] modulePickle(String className) {
    ByteArrayOutputStream p = new ByteArrayOutputStream();
    p.write(0x80); // PROTO
    p.write(2);
    p.writeBytes(("c__torch__\n" + className + "\n").getBytes(StandardCharsets.US_ASCII)); // GLOBAL
    p.write(')'); // EMPTY_TUPLE
    p.write(0x81); // NEWOBJ
    p.write('}'); // EMPTY_DICT
    p.write('('); // MARK
    byte[] key = "training".getBytes(StandardCharsets.UTF_8);
    p.write('X'); // BINUNICODE
    p.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(key.length).array());
    p.writeBytes(key);
    p.write(0x89); // NEWFALSE
    p.write('u'); // SETITEMS
    p.write('b'); // BUILD
    p.write('.'); // STOP
    return p.toByteArray();
  }

  private static void stored(ZipOutputStream zip, String name, byte[] data) throws IOException {
    ZipEntry e = new ZipEntry(name);
    e.setMethod(ZipEntry.STORED);
    e.setSize(data.length);
    CRC32 crc = new CRC32();
    crc.update(data);
    e.setCrc(crc.getValue());
    zip.putNextEntry(e);
    zip.write(data);
    zip.closeEntry();
  }
}
