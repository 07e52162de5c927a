package io.sparkinfer.safetensors;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The header of one {@code .safetensors} file, parsed and checked against the file's size.
 *
 * <p>Layout: 8 bytes little-endian header length N, N bytes of JSON ({@code name -> {dtype, shape,
 * data_offsets: [begin, end]}}, plus an optional {@code __metadata__}), then the data. Every size read
 * from the file is bounded before it is used: the header length by {@link #MAX_HEADER_BYTES} and the file
 * size, each tensor's byte range by the data section, and its length by its dtype and shape. Tensors must
 * not overlap.
 *
 * <p>Tensor bytes are read by {@link #map(TensorInfo, long, long)}: a read-only memory mapping, so weights
 * are never copied into the Java heap.
 */
public final class SafetensorsFile {

  /** Upper bound on the JSON header; the format's reference implementation uses 100 MB too. */
  public static final long MAX_HEADER_BYTES = 100L << 20;

  private final Path path;
  private final long fileSize;
  private final Map<String, TensorInfo> tensors;
  private final Map<String, String> metadata;

  private SafetensorsFile(Path path, long fileSize, Map<String, TensorInfo> tensors, Map<String, String> metadata) {
    this.path = path;
    this.fileSize = fileSize;
    this.tensors = Collections.unmodifiableMap(tensors);
    this.metadata = Collections.unmodifiableMap(metadata);
  }

  /** Reads and validates the header of a safetensors file. */
  public static SafetensorsFile open(Path path) {
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size < 8) {
        throw new SafetensorsException(path + ": file has " + size + " bytes, too short for a safetensors header");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0);
      long headerLen = lenBuf.getLong(0);
      if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES) {
        throw new SafetensorsException(path + ": header length " + Long.toUnsignedString(headerLen)
            + " is outside 1.." + MAX_HEADER_BYTES + " bytes: not a safetensors file, or a corrupt one");
      }
      if (8 + headerLen > size) {
        throw new SafetensorsException(path + ": header length " + headerLen + " runs past the end of the "
            + size + "-byte file (truncated?)");
      }
      ByteBuffer header = ByteBuffer.allocate((int) headerLen);
      readFully(ch, header, 8);
      String json = new String(header.array(), StandardCharsets.UTF_8);
      return parseHeader(path, size, 8 + headerLen, json);
    } catch (NoSuchFileException e) {
      throw new SafetensorsException("missing weights file " + path, e);
    } catch (IOException e) {
      throw new SafetensorsException("cannot read " + path + ": " + e.getMessage(), e);
    }
  }

  /**
   * The header as strict JSON (RFC 8259, as the safetensors writers produce it): Gson's default lenient
   * mode would also take unquoted names, single quotes, comments and trailing text.
   */
  static JsonElement parseStrict(String json) {
    try (JsonReader reader = new JsonReader(new StringReader(json))) {
      reader.setStrictness(Strictness.STRICT);
      JsonElement e = JsonParser.parseReader(reader);
      if (reader.peek() != JsonToken.END_DOCUMENT) {
        throw new JsonParseException("text after the JSON value");
      }
      return e;
    } catch (IOException e) {
      throw new JsonParseException(e.getMessage(), e);
    }
  }

  private static SafetensorsFile parseHeader(Path path, long fileSize, long dataStart, String json) {
    JsonObject root;
    try {
      JsonElement e = parseStrict(json);
      if (!e.isJsonObject()) {
        throw new SafetensorsException(path + ": header is not a JSON object");
      }
      root = e.getAsJsonObject();
    } catch (JsonParseException e) {
      throw new SafetensorsException(path + ": header is not valid JSON: " + e.getMessage(), e);
    }
    long dataSize = fileSize - dataStart;
    Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    Map<String, String> metadata = new LinkedHashMap<>();
    for (Map.Entry<String, JsonElement> entry : root.entrySet()) {
      String name = entry.getKey();
      if (name.equals("__metadata__")) {
        if (entry.getValue().isJsonObject()) {
          entry.getValue().getAsJsonObject().entrySet()
              .forEach(m -> metadata.put(m.getKey(), m.getValue().isJsonPrimitive() ? m.getValue().getAsString() : m.getValue().toString()));
        }
        continue;
      }
      try {
        tensors.put(name, parseEntry(path, name, entry.getValue(), dataStart, dataSize));
      } catch (IllegalArgumentException | IllegalStateException | ArithmeticException | UnsupportedOperationException e) {
        throw new SafetensorsException(path + ": tensor '" + name + "': " + e.getMessage(), e);
      }
    }
    checkNoOverlap(path, tensors);
    return new SafetensorsFile(path, fileSize, tensors, metadata);
  }

  private static TensorInfo parseEntry(Path path, String name, JsonElement value, long dataStart, long dataSize) {
    if (!value.isJsonObject()) {
      throw new IllegalArgumentException("entry is not an object");
    }
    JsonObject o = value.getAsJsonObject();
    if (!o.has("dtype") || !o.has("shape") || !o.has("data_offsets")) {
      throw new IllegalArgumentException("entry needs dtype, shape and data_offsets, got " + o.keySet());
    }
    JsonElement dtypeJson = o.get("dtype");
    if (!dtypeJson.isJsonPrimitive() || !dtypeJson.getAsJsonPrimitive().isString()) {
      throw new IllegalArgumentException("dtype must be a string, got " + dtypeJson);
    }
    SafetensorsDtype dtype = SafetensorsDtype.parse(dtypeJson.getAsString());
    if (!o.get("shape").isJsonArray()) {
      throw new IllegalArgumentException("shape must be an array of dimensions, got " + o.get("shape"));
    }
    JsonArray shapeJson = o.getAsJsonArray("shape");
    long[] shape = new long[shapeJson.size()];
    long elements = 1;
    for (int i = 0; i < shape.length; i++) {
      shape[i] = exactLong(shapeJson.get(i), "dimension");
      if (shape[i] < 0) {
        throw new IllegalArgumentException("negative dimension " + shape[i]);
      }
      elements = Math.multiplyExact(elements, shape[i]);
    }
    JsonElement offsetsJson = o.get("data_offsets");
    if (!offsetsJson.isJsonArray() || offsetsJson.getAsJsonArray().size() != 2) {
      throw new IllegalArgumentException("data_offsets must be [begin, end], got " + offsetsJson);
    }
    JsonArray offsets = offsetsJson.getAsJsonArray();
    long begin = exactLong(offsets.get(0), "data offset");
    long end = exactLong(offsets.get(1), "data offset");
    if (begin < 0 || end < begin || end > dataSize) {
      throw new IllegalArgumentException("data_offsets [" + begin + ", " + end + "] fall outside the "
          + dataSize + "-byte data section (truncated file or lying header)");
    }
    long expected = Math.multiplyExact(elements, dtype.bytes());
    if (end - begin != expected) {
      throw new IllegalArgumentException("data_offsets span " + (end - begin) + " bytes but dtype " + dtype
          + " and shape " + shapeJson + " need " + expected);
    }
    return new TensorInfo(name, dtype, shape, path, dataStart + begin, end - begin);
  }

  /** A JSON integer as a long; Gson's own getAsLong would truncate 2.5 to 2 and wrap 2^64 silently. */
  private static long exactLong(JsonElement e, String what) {
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
      throw new IllegalArgumentException(what + " " + e + " is not an integer");
    }
    try {
      return e.getAsBigDecimal().longValueExact();
    } catch (ArithmeticException | NumberFormatException ex) {
      throw new IllegalArgumentException(what + " " + e + " is not an integer in the range of a long", ex);
    }
  }

  private static void checkNoOverlap(Path path, Map<String, TensorInfo> tensors) {
    List<TensorInfo> sorted = new ArrayList<>(tensors.values());
    // by start, then length: an empty tensor at another's start is not inside it, whatever the header order
    sorted.sort(Comparator.comparingLong(TensorInfo::fileOffset).thenComparingLong(TensorInfo::byteLength));
    for (int i = 1; i < sorted.size(); i++) {
      TensorInfo prev = sorted.get(i - 1);
      TensorInfo cur = sorted.get(i);
      if (cur.fileOffset() < prev.fileOffset() + prev.byteLength()) {
        throw new SafetensorsException(path + ": tensors '" + prev.name() + "' and '" + cur.name() + "' overlap");
      }
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
    long pos = position;
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos);
      if (n < 0) {
        throw new SafetensorsException("unexpected end of file at byte " + pos);
      }
      pos += n;
    }
  }

  /**
   * Maps part of a tensor's bytes read-only, little-endian.
   *
   * @param info a tensor of this file
   * @param offset the first byte, relative to the tensor's start
   * @param length how many bytes (at most {@link Integer#MAX_VALUE})
   */
  public static ByteBuffer map(TensorInfo info, long offset, long length) {
    if (offset < 0 || length < 0 || offset + length > info.byteLength() || length > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("range [" + offset + ", " + (offset + length) + ") is outside "
          + info.name() + "'s " + info.byteLength() + " bytes or over 2 GiB");
    }
    if (length == 0) {
      return ByteBuffer.allocateDirect(0).order(ByteOrder.LITTLE_ENDIAN);
    }
    try (FileChannel ch = FileChannel.open(info.file(), StandardOpenOption.READ)) {
      return ch.map(FileChannel.MapMode.READ_ONLY, info.fileOffset() + offset, length).order(ByteOrder.LITTLE_ENDIAN);
    } catch (IOException e) {
      throw new SafetensorsException("cannot map " + info.name() + " from " + info.file() + ": " + e.getMessage(), e);
    }
  }

  public Path path() {
    return path;
  }

  public long fileSize() {
    return fileSize;
  }

  /** The tensors by name, in header order. */
  public Map<String, TensorInfo> tensors() {
    return tensors;
  }

  /** The header's {@code __metadata__} strings. */
  public Map<String, String> metadata() {
    return metadata;
  }
}
