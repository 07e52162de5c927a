package io.sparkinfer.safetensors;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * One tensor's entry in a safetensors header, with its byte range resolved to absolute file offsets.
 *
 * @param name the tensor name (Hugging Face's, e.g. {@code model.layers.0.self_attn.q_proj.weight})
 * @param dtype the element type
 * @param shape the dimensions
 * @param file the file that holds the bytes
 * @param fileOffset absolute offset of the first byte in {@code file}
 * @param byteLength number of bytes, equal to elements times the dtype's size
 */
public record TensorInfo(String name, SafetensorsDtype dtype, long[] shape, Path file, long fileOffset, long byteLength) {

  public TensorInfo {
    shape = shape.clone();
  }

  /** Number of elements. */
  public long elementCount() {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  @Override
  public String toString() {
    return name + " " + dtype + " " + Arrays.toString(shape);
  }
}
