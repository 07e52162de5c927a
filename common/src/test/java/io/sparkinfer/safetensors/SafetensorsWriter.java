package io.sparkinfer.safetensors;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes {@code .safetensors} files for tests: valid ones from tensors added in order (contiguous data,
 * header padded to 8 bytes as the reference writer does), and broken ones through {@link #header()} /
 * {@link #writeWithHeader(Path, String)} and {@link #writeRaw(Path, long, byte[], byte[])}.
 */
public final class SafetensorsWriter {

  private record Entry(String dtype, long[] shape, byte[] data) {}

  private final Map<String, Entry> tensors = new LinkedHashMap<>();
  private final Map<String, String> metadata = new LinkedHashMap<>();

  /** Adds a tensor from raw little-endian bytes; dtype is the header string, so unknown ones can be written. */
  public SafetensorsWriter add(String name, String dtype, long[] shape, byte[] data) {
    tensors.put(name, new Entry(dtype, shape.clone(), data.clone()));
    return this;
  }

  public SafetensorsWriter f32(String name, long[] shape, float... values) {
    return add(name, "F32", shape, f32Bytes(values));
  }

  /** Values must be exact bf16 numbers (the low 16 bits of their float32 bits zero). */
  public SafetensorsWriter bf16(String name, long[] shape, float... values) {
    return add(name, "BF16", shape, bf16Bytes(values));
  }

  /** Values must be exact normal fp16 numbers. */
  public SafetensorsWriter f16(String name, long[] shape, float... values) {
    return add(name, "F16", shape, f16Bytes(values));
  }

  public SafetensorsWriter metadata(String key, String value) {
    metadata.put(key, value);
    return this;
  }

  /** The header this writer would write: tensors in order with contiguous data_offsets. */
  public JsonObject header() {
    JsonObject root = new JsonObject();
    if (!metadata.isEmpty()) {
      JsonObject meta = new JsonObject();
      metadata.forEach(meta::addProperty);
      root.add("__metadata__", meta);
    }
    long offset = 0;
    for (Map.Entry<String, Entry> e : tensors.entrySet()) {
      JsonObject t = new JsonObject();
      t.addProperty("dtype", e.getValue().dtype());
      JsonArray shape = new JsonArray();
      for (long d : e.getValue().shape()) {
        shape.add(d);
      }
      t.add("shape", shape);
      JsonArray offsets = new JsonArray();
      offsets.add(offset);
      offset += e.getValue().data().length;
      offsets.add(offset);
      t.add("data_offsets", offsets);
      root.add(e.getKey(), t);
    }
    return root;
  }

  /** The data section: every tensor's bytes, in order. */
  public byte[] data() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    tensors.values().forEach(e -> out.writeBytes(e.data()));
    return out.toByteArray();
  }

  /** Writes a valid file. */
  public Path write(Path file) {
    return writeWithHeader(file, header().toString());
  }

  /** Writes this writer's data behind an arbitrary header text (padded with spaces to 8 bytes). */
  public Path writeWithHeader(Path file, String headerJson) {
    StringBuilder padded = new StringBuilder(headerJson);
    while (padded.toString().getBytes(StandardCharsets.UTF_8).length % 8 != 0) {
      padded.append(' ');
    }
    byte[] header = padded.toString().getBytes(StandardCharsets.UTF_8);
    return writeRaw(file, header.length, header, data());
  }

  /** Writes {@code declaredHeaderLength} as the 8-byte prefix, then the header and data bytes as given. */
  public static Path writeRaw(Path file, long declaredHeaderLength, byte[] header, byte[] data) {
    ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, declaredHeaderLength);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(prefix.array());
    out.writeBytes(header);
    out.writeBytes(data);
    try {
      Files.write(file, out.toByteArray());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  public static byte[] f32Bytes(float... values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putFloat(v);
    }
    return b.array();
  }

  public static byte[] bf16Bytes(float... values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      int bits = Float.floatToRawIntBits(v);
      if ((bits & 0xFFFF) != 0) {
        throw new IllegalArgumentException(v + " is not exactly representable in bf16");
      }
      b.putShort((short) (bits >>> 16));
    }
    return b.array();
  }

  public static byte[] f16Bytes(float... values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putShort(halfBits(v));
    }
    return b.array();
  }

  /** The IEEE half-precision bits of an exact normal fp16 value or zero (Java 17 has no Float.floatToFloat16). */
  static short halfBits(float v) {
    int bits = Float.floatToRawIntBits(v);
    int sign = (bits >>> 16) & 0x8000;
    if ((bits & 0x7FFFFFFF) == 0) {
      return (short) sign;
    }
    int exponent = ((bits >>> 23) & 0xFF) - 127 + 15;
    int mantissa = bits & 0x7FFFFF;
    if (exponent <= 0 || exponent >= 31 || (mantissa & 0x1FFF) != 0) {
      throw new IllegalArgumentException(v + " is not an exact normal fp16 value");
    }
    return (short) (sign | exponent << 10 | mantissa >>> 13);
  }

  /** Deterministic pseudo-random values that are exact in bf16 and fp16 (multiples of 1/256 in [-1, 1)). */
  public static float[] exactValues(int n, int seed) {
    float[] out = new float[n];
    long state = seed * 0x9E3779B97F4A7C15L + 1;
    for (int i = 0; i < n; i++) {
      state = state * 6364136223846793005L + 1442695040888963407L;
      out[i] = ((int) (state >>> 40) % 512 - 256) / 256f;
    }
    return out;
  }
}
