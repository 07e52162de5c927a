package io.sparkinfer.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.entry;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {

  @TempDir Path dir;

  private static final long[] S2x3 = {2, 3};

  private SafetensorsWriter twoTensors() {
    return new SafetensorsWriter()
        .f32("a", S2x3, 1, 2, 3, 4, 5, 6)
        .bf16("b", new long[] {4}, 1.5f, -2.25f, 3f, 0f);
  }

  /** A one-tensor header whose entry is {@code entry} (as JSON text). */
  private Path withEntry(String entry, int dataBytes) {
    return new SafetensorsWriter().add("pad", "U8", new long[] {dataBytes}, new byte[dataBytes])
        .writeWithHeader(dir.resolve("x.safetensors"), "{\"w\": " + entry + "}");
  }

  @Test
  void validFileListsTensorsInHeaderOrderWithAbsoluteOffsets() throws IOException {
    SafetensorsWriter w = twoTensors().metadata("format", "pt");
    Path file = w.write(dir.resolve("m.safetensors"));

    SafetensorsFile sf = SafetensorsFile.open(file);

    long headerLen = (w.header().toString().length() + 7) & ~7L; // the writer pads it to a multiple of 8
    long dataStart = 8 + headerLen;
    assertThat(sf.path()).isEqualTo(file);
    assertThat(sf.fileSize()).isEqualTo(Files.size(file)).isEqualTo(dataStart + 24 + 8);
    assertThat(sf.metadata()).containsExactly(entry("format", "pt"));
    assertThat(sf.tensors().keySet()).containsExactly("a", "b");
    TensorInfo a = sf.tensors().get("a");
    assertThat(a.dtype()).isEqualTo(SafetensorsDtype.F32);
    assertThat(a.shape()).containsExactly(2, 3);
    assertThat(a.elementCount()).isEqualTo(6);
    assertThat(a.fileOffset()).isEqualTo(dataStart);
    assertThat(a.byteLength()).isEqualTo(24);
    assertThat(a.file()).isEqualTo(file);
    TensorInfo b = sf.tensors().get("b");
    assertThat(b.dtype()).isEqualTo(SafetensorsDtype.BF16);
    assertThat(b.fileOffset()).isEqualTo(dataStart + 24);
    assertThat(b.byteLength()).isEqualTo(8);
    assertThat(b.toString()).isEqualTo("b BF16 [4]");
  }

  @Test
  void mapReturnsTheTensorBytesLittleEndian() {
    Path file = twoTensors().write(dir.resolve("m.safetensors"));
    TensorInfo a = SafetensorsFile.open(file).tensors().get("a");

    ByteBuffer whole = SafetensorsFile.map(a, 0, a.byteLength());
    ByteBuffer tail = SafetensorsFile.map(a, 20, 4);

    assertThat(whole.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
    assertThat(whole.remaining()).isEqualTo(24);
    assertThat(whole.getFloat(0)).isEqualTo(1f);
    assertThat(whole.getFloat(20)).isEqualTo(6f);
    assertThat(tail.getFloat(0)).isEqualTo(6f);
    assertThat(SafetensorsFile.map(a, 24, 0).remaining()).isZero();
  }

  @Test
  void mapRefusesRangesOutsideTheTensor() {
    TensorInfo a = SafetensorsFile.open(twoTensors().write(dir.resolve("m.safetensors"))).tensors().get("a");

    assertThatThrownBy(() -> SafetensorsFile.map(a, 20, 8))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("range [20, 28) is outside a's 24 bytes");
    assertThatThrownBy(() -> SafetensorsFile.map(a, -1, 4))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("outside a's 24 bytes");
  }

  @Test
  void tensorInfoShapeIsDefensivelyCopied() {
    long[] shape = {2, 3};
    TensorInfo t = new TensorInfo("t", SafetensorsDtype.F32, shape, dir, 8, 24);
    shape[0] = 99;
    t.shape()[1] = 99;
    assertThat(t.shape()).containsExactly(2, 3);
  }

  @Test
  void headerPaddedWithTrailingSpacesAndEmptyTensorsAreAccepted() {
    SafetensorsWriter w = new SafetensorsWriter()
        .f32("empty", new long[] {0, 4})
        .f32("scalar", new long[] {}, 7f);
    Path file = w.writeWithHeader(dir.resolve("m.safetensors"), w.header() + "        ");

    SafetensorsFile sf = SafetensorsFile.open(file);

    assertThat(sf.tensors().get("empty").byteLength()).isZero();
    assertThat(sf.tensors().get("scalar").shape()).isEmpty();
    assertThat(sf.tensors().get("scalar").elementCount()).isEqualTo(1);
    assertThat(sf.metadata()).isEmpty();
  }

  @Test
  void emptyTensorAtTheStartOfAnotherIsNotAnOverlapWhicheverComesFirstInTheHeader() {
    // Both orders of the same two entries: the zero-length tensor shares its start with a full one.
    String full = "\"full\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}";
    String empty = "\"empty\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}";
    SafetensorsWriter data = new SafetensorsWriter().f32("full", new long[] {2}, 1, 2);

    Path fullFirst = data.writeWithHeader(dir.resolve("a.safetensors"), "{" + full + ", " + empty + "}");
    Path emptyFirst = data.writeWithHeader(dir.resolve("b.safetensors"), "{" + empty + ", " + full + "}");

    assertThat(SafetensorsFile.open(fullFirst).tensors()).containsOnlyKeys("full", "empty");
    assertThat(SafetensorsFile.open(emptyFirst).tensors()).containsOnlyKeys("full", "empty");
  }

  @Test
  void missingFileIsReportedByPath() {
    Path missing = dir.resolve("nope.safetensors");
    assertThatThrownBy(() -> SafetensorsFile.open(missing))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("missing weights file " + missing);
  }

  @Test
  void fileShorterThanTheLengthPrefixIsRejected() throws IOException {
    Path file = Files.write(dir.resolve("short.safetensors"), new byte[] {1, 2, 3, 4, 5});
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("file has 5 bytes, too short for a safetensors header");
  }

  @Test
  void headerLengthZeroIsRejected() {
    Path file = SafetensorsWriter.writeRaw(dir.resolve("z.safetensors"), 0, new byte[0], new byte[16]);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("header length 0 is outside 1..104857600 bytes");
  }

  @Test
  void hugeHeaderLengthIsRejectedBeforeAnythingIsAllocated() {
    Path file = SafetensorsWriter.writeRaw(dir.resolve("huge.safetensors"), 1L << 62, "{}".getBytes(), new byte[0]);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("header length 4611686018427387904 is outside 1..104857600 bytes");
  }

  @Test
  void headerLengthWithTheTopBitSetIsReportedUnsigned() {
    Path file = SafetensorsWriter.writeRaw(dir.resolve("neg.safetensors"), -1L, "{}".getBytes(), new byte[0]);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("header length 18446744073709551615 is outside");
  }

  @Test
  void headerLengthJustOverTheMaximumIsRejected() {
    Path file = SafetensorsWriter.writeRaw(dir.resolve("big.safetensors"), SafetensorsFile.MAX_HEADER_BYTES + 1,
        "{}".getBytes(), new byte[0]);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("header length 104857601 is outside");
  }

  @Test
  void headerLongerThanTheFileIsRejected() {
    byte[] header = "{}      ".getBytes(StandardCharsets.UTF_8);
    Path file = SafetensorsWriter.writeRaw(dir.resolve("t.safetensors"), 100, header, new byte[0]);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("header length 100 runs past the end of the 16-byte file");
  }

  @Test
  void headerThatIsNotJsonIsRejected() {
    Path file = twoTensors().writeWithHeader(dir.resolve("j.safetensors"), "{\"a\": {\"dtype\": ");
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining(file.toString())
        .hasMessageContaining("header is not valid JSON");
  }

  /** Strict JSON, as safetensors writers produce it: Gson's lenient extensions are refused. */
  @Test
  void headerInLenientJsonIsRejected() {
    SafetensorsWriter w = twoTensors();
    String strict = w.header().toString();
    for (String lenient : new String[] {strict.replaceFirst("\"([a-z_]+)\":", "$1:"), strict.replace('"', '\''),
        "/* c */" + strict, strict + " {}"}) {
      Path file = w.writeWithHeader(dir.resolve("l.safetensors"), lenient);
      assertThatThrownBy(() -> SafetensorsFile.open(file)).as(lenient)
          .isInstanceOf(SafetensorsException.class)
          .hasMessageContaining("header is not valid JSON");
    }
  }

  @Test
  void headerThatIsBinaryGarbageIsRejected() {
    byte[] garbage = {(byte) 0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x01}; // a pickle's first bytes
    Path file = SafetensorsWriter.writeRaw(dir.resolve("g.safetensors"), garbage.length, garbage, new byte[0]);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("header is not valid JSON");
  }

  @Test
  void headerJsonThatIsNotAnObjectIsRejected() {
    Path array = twoTensors().writeWithHeader(dir.resolve("arr.safetensors"), "[1, 2, 3]");
    Path blank = twoTensors().writeWithHeader(dir.resolve("blank.safetensors"), "        ");
    assertThatThrownBy(() -> SafetensorsFile.open(array))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("header is not a JSON object");
    assertThatThrownBy(() -> SafetensorsFile.open(blank))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("header is not a JSON object");
  }

  @Test
  void unknownDtypeIsRejectedNamingTheTensorAndTheKnownOnes() {
    Path file = new SafetensorsWriter().add("w", "Q4_K", new long[] {4}, new byte[4]).write(dir.resolve("d.safetensors"));
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w': unknown dtype 'Q4_K'")
        .hasMessageContaining("known: F64, F32, F16, BF16");
  }

  @Test
  void negativeDimensionIsRejected() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": [2, -2], \"data_offsets\": [0, 16]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w': negative dimension -2");
  }

  @Test
  void fractionalDimensionIsRejected() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}", 8);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("2.5");
  }

  @Test
  void shapeThatIsNotAnArrayIsRejectedAsAMalformedFile() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 16]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w': shape must be an array of dimensions, got 4");
  }

  @Test
  void dataOffsetsThatAreNotAnArrayAreRejectedAsAMalformedFile() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": \"0-16\"}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w': data_offsets must be [begin, end], got \"0-16\"");
  }

  @Test
  void dtypeThatIsNotAStringIsRejectedAsAMalformedFile() {
    Path file = withEntry("{\"dtype\": {\"x\": 1}, \"shape\": [4], \"data_offsets\": [0, 16]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("dtype");
  }

  @Test
  void shapeWhoseElementCountOverflowsIsRejected() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 16]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("overflow");
  }

  @Test
  void entryMissingAFieldIsRejectedListingWhatItHas() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": [4]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w': entry needs dtype, shape and data_offsets, got [dtype, shape]");
  }

  @Test
  void entryThatIsNotAnObjectIsRejected() {
    Path file = withEntry("[1, 2]", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w': entry is not an object");
  }

  @Test
  void dataOffsetsWithThreeNumbersAreRejected() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 8, 16]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("data_offsets must be [begin, end], got [0,8,16]");
  }

  @Test
  void lyingHeaderWhoseOffsetsRunPastTheDataIsRejected() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [0, 64]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w': data_offsets [0, 64] fall outside the 16-byte data section");
  }

  @Test
  void truncatedFileIsRejectedByTheOffsetCheck() throws IOException {
    Path file = twoTensors().write(dir.resolve("m.safetensors"));
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.truncate(ch.size() - 3);
    }
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'b': data_offsets [24, 32] fall outside the 29-byte data section")
        .hasMessageContaining("truncated file or lying header");
  }

  @Test
  void negativeOrReversedOffsetsAreRejected() {
    Path negative = withEntry("{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(negative))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("data_offsets [-4, 0] fall outside");
    Path reversed = withEntry("{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(reversed))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("data_offsets [8, 4] fall outside");
  }

  @Test
  void offsetsSpanThatDisagreesWithDtypeAndShapeIsRejected() {
    Path file = withEntry("{\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}", 16);
    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'w': data_offsets span 8 bytes but dtype F32 and shape [3] need 12");
  }

  @Test
  void overlappingTensorsAreRejected() {
    JsonObject header = twoTensors().header();
    JsonArray offsets = new JsonArray();
    offsets.add(16); // b's 8 bytes now start inside a's [0, 24)
    offsets.add(24);
    header.getAsJsonObject("b").add("data_offsets", offsets);
    Path file = twoTensors().writeWithHeader(dir.resolve("o.safetensors"), header.toString());

    assertThatThrownBy(() -> SafetensorsFile.open(file))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensors 'a' and 'b' overlap");
  }

  @Test
  void metadataValuesThatAreNotStringsAreKeptAsJson() {
    SafetensorsWriter w = twoTensors();
    JsonObject header = w.header();
    JsonObject meta = new JsonObject();
    meta.addProperty("format", "pt");
    meta.addProperty("step", 3);
    meta.add("nested", new JsonArray());
    header.add("__metadata__", meta);
    Path file = w.writeWithHeader(dir.resolve("m.safetensors"), header.toString());

    assertThat(SafetensorsFile.open(file).metadata())
        .containsEntry("format", "pt")
        .containsEntry("step", "3")
        .containsEntry("nested", "[]");
  }

  @Test
  void dtypeParseNamesTheKnownTypesAndSizesAreRight() {
    assertThat(SafetensorsDtype.parse("BF16")).isEqualTo(SafetensorsDtype.BF16);
    assertThat(SafetensorsDtype.BF16.bytes()).isEqualTo(2);
    assertThat(SafetensorsDtype.F64.bytes()).isEqualTo(8);
    assertThat(SafetensorsDtype.F8_E4M3.bytes()).isEqualTo(1);
    assertThat(SafetensorsDtype.F16.isLoadableFloat()).isTrue();
    assertThat(SafetensorsDtype.I64.isLoadableFloat()).isFalse();
    assertThatThrownBy(() -> SafetensorsDtype.parse("bf16"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("unknown dtype 'bf16'");
  }
}
