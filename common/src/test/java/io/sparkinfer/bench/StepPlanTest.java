package io.sparkinfer.bench;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.backend.scripted.ScriptedCausalLm;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The step plan the Python tools read describes the engine's own step: its parameters, sources and launches. */
class StepPlanTest {

  @Test
  void planNamesEveryStepParameterWithItsShapeAndWritesTheEnginesSources(@TempDir Path tmp) throws Exception {
    Path model = Fixtures.model("qwen2-code-demo");
    Path out = tmp.resolve("plan.json");
    StepPlan.main(new String[] {"--model", model.toString(), "--out", out.toString(), "--batch-sizes", "1,64,256"});
    JsonObject plan = JsonParser.parseString(Files.readString(out)).getAsJsonObject();

    JsonObject parameters = plan.getAsJsonObject("parameters");
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(model, Precision.FP32, "cpu"))) {
      Map<String, NDArray> actual = engine.weights().stepParameters();
      assertThat(parameters.keySet()).as("the engine's step parameters, in its order")
          .containsExactlyElementsOf(actual.keySet());
      actual.forEach((name, tensor) -> assertThat(longs(parameters.getAsJsonArray(name))).as(name)
          .containsExactly(tensor.getShape().getShape()));
    }

    JsonObject files = plan.getAsJsonObject("files");
    byte[] archive = Files.readAllBytes(tmp.resolve(files.get("llama_step").getAsString()));
    assertThat(entry(archive, "llamastep/code/__torch__.py")).as("the archive holds the engine's step source")
        .isEqualTo(TorchScriptArchive.source(ScriptedCausalLm.KERNEL));
    assertThat(Files.readString(tmp.resolve(files.get("decode_kernels").getAsString())))
        .isEqualTo(TorchScriptArchive.source(io.sparkinfer.backend.fused.FusedDecode.KERNELS));
    assertThat(plan.getAsJsonArray("nvrtc_options").toString()).contains("-DGROUP=").contains("-DHEAD_DIM=");

    int capacity = plan.get("capacity").getAsInt();
    for (String batch : new String[] {"1", "64", "256"}) {
      JsonObject l = plan.getAsJsonObject("launches").getAsJsonObject(batch);
      for (String rows : new String[] {"rms_norm", "rms_norm_fp8", "quantize_fp8", "silu_mul_fp8"}) {
        assertThat(l.getAsJsonObject(rows).getAsJsonArray("grid").get(0).getAsInt()).as("%s: a block per row", rows)
            .isEqualTo(Integer.parseInt(batch));
      }
      int splits = l.get("splits").getAsInt();
      int splitSize = l.get("split_size").getAsInt();
      assertThat((long) splits * splitSize).as("splits cover the cache").isGreaterThanOrEqualTo(capacity);
      assertThat(l.getAsJsonObject("attention").getAsJsonArray("grid").get(2).getAsInt()).isEqualTo(splits);
      assertThat(l.getAsJsonObject("attention_by_kernel").keySet())
          .containsExactlyInAnyOrder("decode_attention", "decode_attention_wide");
    }
  }

  private static long[] longs(JsonArray a) {
    long[] out = new long[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).getAsLong();
    }
    return out;
  }

  private static String entry(byte[] zip, String name) throws Exception {
    try (ZipInputStream in = new ZipInputStream(new ByteArrayInputStream(zip))) {
      for (ZipEntry e = in.getNextEntry(); e != null; e = in.getNextEntry()) {
        if (e.getName().equals(name)) {
          return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
      }
    }
    return null;
  }
}
