package io.sparkinfer.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class TensorLoaderTest {

  @TempDir Path dir;
  private NDManager manager;

  @BeforeEach
  void openManager() {
    manager = NDManager.newBaseManager("PyTorch");
  }

  @AfterEach
  void closeManager() {
    manager.close();
  }

  private TensorInfo single(SafetensorsWriter w, String name) {
    return SafetensorsFile.open(w.write(dir.resolve(name + ".safetensors"))).tensors().get(name);
  }

  private static float[] f32(NDArray a) {
    return a.toType(DataType.FLOAT32, false).toFloatArray();
  }

  @Test
  void f32IsLoadedWithItsShapeAndExactValues() {
    TensorInfo t = single(new SafetensorsWriter().f32("w", new long[] {2, 3}, 1.5f, -2f, 0.1f, 1e-30f, 3e30f, -0f), "w");

    NDArray a = TensorLoader.load(t, manager, DataType.FLOAT32);

    assertThat(a.getShape()).isEqualTo(new Shape(2, 3));
    assertThat(a.getDataType()).isEqualTo(DataType.FLOAT32);
    assertThat(a.toFloatArray()).containsExactly(1.5f, -2f, 0.1f, 1e-30f, 3e30f, -0f);
  }

  /**
   * Weights are read once: an F32 tensor on CPU is the file's memory mapping itself, not a copy, so bytes
   * written to the file afterwards show through the loaded array.
   */
  @Test
  void f32OnCpuIsAViewOfTheMappedFileNotACopy() throws Exception {
    Path file = new SafetensorsWriter().f32("w", new long[] {4}, 1f, 2f, 3f, 4f).write(dir.resolve("view.safetensors"));
    TensorInfo t = SafetensorsFile.open(file).tensors().get("w");
    NDArray a = TensorLoader.load(t, manager, DataType.FLOAT32);
    assertThat(a.toFloatArray()).containsExactly(1f, 2f, 3f, 4f);

    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(SafetensorsWriter.f32Bytes(9f)), t.fileOffset());
    }

    assertThat(a.toFloatArray()).containsExactly(9f, 2f, 3f, 4f);
  }

  @Test
  void bf16IsWidenedToTheExactFloat32Values() {
    TensorInfo t = single(new SafetensorsWriter().bf16("w", new long[] {2, 2}, 1.5f, -2.25f, 3.0f, -0.0078125f), "w");

    NDArray a = TensorLoader.load(t, manager, DataType.FLOAT32);

    assertThat(a.getDataType()).isEqualTo(DataType.FLOAT32);
    assertThat(a.getShape()).isEqualTo(new Shape(2, 2));
    assertThat(a.toFloatArray()).containsExactly(1.5f, -2.25f, 3.0f, -0.0078125f);
  }

  @Test
  void bf16BitsAreCarriedUnchangedInASixteenBitArray() {
    float[] values = {1.5f, -2.25f, 3.0f, -0.0078125f, 0f, -0f, (float) Math.pow(2, 100), Float.POSITIVE_INFINITY};
    TensorInfo t = single(new SafetensorsWriter().bf16("w", new long[] {2, 4}, values), "w");

    NDArray bits = TensorLoader.loadBf16Bits(t, manager);

    assertThat(bits.getShape()).isEqualTo(new Shape(2, 4));
    assertThat(bits.getDataType().getNumOfBytes()).isEqualTo(2);
    ByteBuffer expected = ByteBuffer.wrap(SafetensorsWriter.bf16Bytes(values)).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer carried = ByteBuffer.wrap(bits.toByteArray()).order(ByteOrder.nativeOrder());
    for (int i = 0; i < values.length; i++) {
      assertThat(carried.getShort(2 * i)).as("value %d's bits", i).isEqualTo(expected.getShort(2 * i));
    }
    assertThatThrownBy(() -> TensorLoader.loadBf16Bits(single(new SafetensorsWriter().f32("x", new long[] {1}, 1f),
        "x"), manager)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not BF16");
  }

  @Test
  void bf16BitPatternsBecomeTheFloatWithThoseTopSixteenBits() {
    short[] bits = {0x3FC0, (short) 0xC010, 0x4040, 0x0000, (short) 0x8000, 0x7F80, (short) 0xFF80, 0x7FC0, 0x0001};
    ByteBuffer in = ByteBuffer.allocate(bits.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (short b : bits) {
      in.putShort(b);
    }
    in.flip();

    FloatBuffer out = TensorLoader.bf16ToF32(in).asFloatBuffer();

    assertThat(out.remaining()).isEqualTo(bits.length);
    assertThat(out.get(0)).isEqualTo(1.5f);
    assertThat(out.get(1)).isEqualTo(-2.25f);
    assertThat(out.get(2)).isEqualTo(3.0f);
    assertThat(Float.floatToRawIntBits(out.get(3))).isZero();
    assertThat(Float.floatToRawIntBits(out.get(4))).isEqualTo(0x80000000);
    assertThat(out.get(5)).isEqualTo(Float.POSITIVE_INFINITY);
    assertThat(out.get(6)).isEqualTo(Float.NEGATIVE_INFINITY);
    assertThat(out.get(7)).isNaN();
    assertThat(Float.floatToRawIntBits(out.get(8))).isEqualTo(0x00010000); // smallest bf16 subnormal
  }

  @Test
  void bf16ToF32ReadsFromTheBufferPositionWhateverItsByteOrder() {
    ByteBuffer in = ByteBuffer.allocate(6).order(ByteOrder.BIG_ENDIAN);
    in.put(0, (byte) 0xFF).put(1, (byte) 0xFF); // skipped by the position below
    in.put(2, (byte) 0xC0).put(3, (byte) 0x3F); // 0x3FC0 little-endian = 1.5
    in.put(4, (byte) 0x10).put(5, (byte) 0xC0); // 0xC010 = -2.25
    in.position(2);

    FloatBuffer out = TensorLoader.bf16ToF32(in).asFloatBuffer();

    assertThat(out.remaining()).isEqualTo(2);
    assertThat(out.get(0)).isEqualTo(1.5f);
    assertThat(out.get(1)).isEqualTo(-2.25f);
  }

  @Test
  void f16IsLoadedAsFloat16AndWidensExactly() {
    TensorInfo t = single(new SafetensorsWriter().f16("w", new long[] {4}, 1.5f, -2.25f, 65504f, 0x1p-14f), "w");

    NDArray half = TensorLoader.load(t, manager, DataType.FLOAT16);
    NDArray full = TensorLoader.load(t, manager, DataType.FLOAT32);

    assertThat(half.getDataType()).isEqualTo(DataType.FLOAT16);
    assertThat(f32(half)).containsExactly(1.5f, -2.25f, 65504f, 0x1p-14f);
    assertThat(full.getDataType()).isEqualTo(DataType.FLOAT32);
    assertThat(full.toFloatArray()).containsExactly(1.5f, -2.25f, 65504f, 0x1p-14f);
  }

  @Test
  void f32AndBf16AreCastToAFloat16Target() {
    TensorInfo f = single(new SafetensorsWriter().f32("f", new long[] {3}, 1.5f, -2.25f, 0.1f), "f");
    TensorInfo b = single(new SafetensorsWriter().bf16("b", new long[] {3}, 1.5f, -2.25f, 3.0f), "b");

    NDArray fromF32 = TensorLoader.load(f, manager, DataType.FLOAT16);
    NDArray fromBf16 = TensorLoader.load(b, manager, DataType.FLOAT16);

    assertThat(fromF32.getDataType()).isEqualTo(DataType.FLOAT16);
    assertThat(f32(fromF32)).containsExactly(1.5f, -2.25f, 0.099975586f); // 0.1 rounded to fp16
    assertThat(fromBf16.getDataType()).isEqualTo(DataType.FLOAT16);
    assertThat(f32(fromBf16)).containsExactly(1.5f, -2.25f, 3.0f);
  }

  @Test
  void scalarAndEmptyTensorsLoad() {
    SafetensorsWriter w = new SafetensorsWriter().f32("s", new long[] {}, 7f).f32("e", new long[] {0, 3});
    SafetensorsFile sf = SafetensorsFile.open(w.write(dir.resolve("m.safetensors")));

    NDArray scalar = TensorLoader.load(sf.tensors().get("s"), manager, DataType.FLOAT32);
    NDArray empty = TensorLoader.load(sf.tensors().get("e"), manager, DataType.FLOAT32);

    assertThat(scalar.getShape()).isEqualTo(new Shape());
    assertThat(scalar.toFloatArray()).containsExactly(7f);
    assertThat(empty.getShape()).isEqualTo(new Shape(0, 3));
    assertThat(empty.toFloatArray()).isEmpty();
  }

  @Test
  void nonFloatDtypeIsRefusedNamingTheTensor() {
    TensorInfo t = single(new SafetensorsWriter().add("ids", "I64", new long[] {2}, new byte[16]), "ids");
    assertThatThrownBy(() -> TensorLoader.load(t, manager, DataType.FLOAT32))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'ids' has dtype I64; weights must be F32, F16 or BF16");
  }

  @Test
  void targetOtherThanFloat32OrFloat16IsRefusedBeforeAnyCast() {
    TensorInfo t = single(new SafetensorsWriter().f32("w", new long[] {1}, 1f), "w");
    assertThatThrownBy(() -> TensorLoader.load(t, manager, DataType.BFLOAT16))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("target dtype bfloat16 is not supported (supported: float32, float16)");
  }

  /** Rows of 5 elements; chunk sizes that split 7 rows unevenly, one row per block, and a chunk over the whole. */
  @ParameterizedTest(name = "{0} -> {1}, chunk {2} bytes")
  @CsvSource({
      "F32, float32, 40", "F32, float32, 20", "F32, float16, 60", "F32, float32, 1000",
      "F16, float16, 30", "F16, float32, 10",
      "BF16, float32, 60", "BF16, float32, 20", "BF16, float16, 40",
  })
  void chunkedLoadEqualsTheWholeTensor(String dtype, String target, long chunkBytes) {
    float[] values = SafetensorsWriter.exactValues(7 * 5, 42);
    long[] shape = {7, 5};
    SafetensorsWriter w = switch (dtype) {
      case "F32" -> new SafetensorsWriter().f32("w", shape, values);
      case "F16" -> new SafetensorsWriter().f16("w", shape, values);
      default -> new SafetensorsWriter().bf16("w", shape, values);
    };
    TensorInfo t = single(w, "w");
    DataType targetType = DataType.valueOf(target.toUpperCase(java.util.Locale.ROOT));

    NDArray chunked = TensorLoader.load(t, manager, targetType, chunkBytes);

    assertThat(chunked.getShape()).isEqualTo(new Shape(7, 5));
    assertThat(chunked.getDataType()).isEqualTo(targetType);
    assertThat(f32(chunked)).containsExactly(values);
  }

  @Test
  void chunkedLoadKeepsInnerDimensionsOfA3dTensor() {
    float[] values = SafetensorsWriter.exactValues(5 * 2 * 3, 7);
    TensorInfo t = single(new SafetensorsWriter().f32("w", new long[] {5, 2, 3}, values), "w");

    NDArray chunked = TensorLoader.load(t, manager, DataType.FLOAT32, 2 * 2 * 3 * 4); // two rows per block

    assertThat(chunked.getShape()).isEqualTo(new Shape(5, 2, 3));
    assertThat(chunked.toFloatArray()).containsExactly(values);
  }

  @Test
  void rowLargerThanTheChunkIsLoadedWhole() {
    float[] values = SafetensorsWriter.exactValues(2 * 8, 3);
    TensorInfo t = single(new SafetensorsWriter().f32("w", new long[] {2, 8}, values), "w");

    NDArray a = TensorLoader.load(t, manager, DataType.FLOAT32, 16); // a row is 32 bytes

    assertThat(a.getShape()).isEqualTo(new Shape(2, 8));
    assertThat(a.toFloatArray()).containsExactly(values);
  }

  @Test
  void arraysLiveOnTheManagersDevice() {
    TensorInfo t = single(new SafetensorsWriter().bf16("w", new long[] {2}, 1f, 2f), "w");
    assertThat(TensorLoader.load(t, manager, DataType.FLOAT32).getDevice()).isEqualTo(manager.getDevice());
  }
}
