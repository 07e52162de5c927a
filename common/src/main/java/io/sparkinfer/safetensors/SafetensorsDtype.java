package io.sparkinfer.safetensors;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The element types of the safetensors format, with their sizes in bytes. */
public enum SafetensorsDtype {
  F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1), F8_E4M3(1), F8_E5M2(1);

  private final int bytes;

  SafetensorsDtype(int bytes) {
    this.bytes = bytes;
  }

  /** Size of one element in bytes. */
  public int bytes() {
    return bytes;
  }

  /** Whether the engine can load weights of this type (F32, F16, BF16). */
  public boolean isLoadableFloat() {
    return this == F32 || this == F16 || this == BF16;
  }

  /** Parses a header dtype string, naming the known ones when it is not one of them. */
  public static SafetensorsDtype parse(String name) {
    for (SafetensorsDtype d : values()) {
      if (d.name().equals(name)) {
        return d;
      }
    }
    throw new IllegalArgumentException("unknown dtype '" + name + "' (known: "
        + Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", ")) + ")");
  }
}
