package io.sparkinfer.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import io.sparkinfer.backend.fused.FusedDecode;
import io.sparkinfer.backend.fused.FusedOptions;
import io.sparkinfer.backend.fused.LaunchPlan;
import io.sparkinfer.backend.scripted.ScriptedCausalLm;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.model.LayerParameter;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.CliArgs;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The engine's decode step as the benchmark's Python tools take it ({@code bench/step_plan.py}), so they run
 * the engine's own sources and launch rules instead of copies: the step parameters by name and shape
 * ({@link LayerParameter}, {@link ModelWeights#stepParameters()}), the TorchScript archives the engine builds
 * from its sources, the kernel source with the NVRTC options the engine compiles it with, and each kernel's
 * launch ({@link LaunchPlan}) at each batch size. Needs no GPU and no libtorch.
 */
public final class StepPlan {

  static final Option<String> MODEL = Option.text("model", "DIR", null, "checkpoint directory (its config.json)");
  static final Option<String> OUT = Option.text("out", "FILE", null,
      "the JSON plan; the archives and the kernel source are written beside it");
  static final Option<String> BATCH_SIZES = Option.text("batch-sizes", "B,B,...", "1,64,256,512",
      "batch sizes to plan the launches for");
  static final Option<Integer> CAPACITY = Option.integer("capacity", "SLOTS", 640,
      "KV cache slots per row (the benchmark's prompts plus new tokens)").atLeast(1);
  static final Option<Boolean> HELP = Option.flag("help", false, "print this help");

  static final OptionTable OPTIONS = new OptionTable(
      new OptionTable.Group("step plan options", List.of(MODEL, OUT, BATCH_SIZES, CAPACITY, HELP)),
      EngineOptions.GROUP);

  private StepPlan() {}

  public static void main(String[] argv) throws IOException {
    CliArgs args = OPTIONS.parse(argv);
    if (args.flag(HELP)) {
      System.out.print(OPTIONS.usage("StepPlan --model DIR --out PLAN.json [options]",
          "Writes the engine's decode step description for bench/step_plan.py."));
      return;
    }
    OptionValues o = OPTIONS.resolve(args, key -> null);
    if (o.get(MODEL) == null || o.get(OUT) == null) {
      throw new IllegalArgumentException("--model and --out are required");
    }
    Path out = Path.of(o.get(OUT));
    ModelConfig config = ModelConfig.load(Path.of(o.get(MODEL)));
    Precision precision = o.get(EngineOptions.PRECISION) != null ? o.get(EngineOptions.PRECISION) : Precision.FP16;
    Files.writeString(out, new GsonBuilder().setPrettyPrinting().create().toJson(plan(config, precision, o, out)));
  }

  /** The plan as JSON, writing the archives and the kernel source beside {@code out}. */
  static JsonObject plan(ModelConfig config, Precision precision, OptionValues o, Path out) throws IOException {
    Path dir = out.toAbsolutePath().getParent();
    JsonObject plan = new JsonObject();
    JsonObject model = new JsonObject();
    model.addProperty("layers", config.numHiddenLayers());
    model.addProperty("hidden_size", config.hiddenSize());
    model.addProperty("num_heads", config.numAttentionHeads());
    model.addProperty("num_kv_heads", config.numKeyValueHeads());
    model.addProperty("head_dim", config.headDim());
    model.addProperty("intermediate_size", config.intermediateSize());
    model.addProperty("vocab_size", config.vocabSize());
    model.addProperty("rms_norm_eps", config.rmsNormEps());
    model.addProperty("precision", precision.label());
    plan.add("model", model);

    JsonObject parameters = new JsonObject(); // every step parameter by key, in the engine's order
    parameters.add(ModelWeights.EMBED_TOKENS, shape(config.vocabSize(), config.hiddenSize()));
    parameters.add(ModelWeights.NORM, shape(config.hiddenSize()));
    parameters.add(ModelWeights.LM_HEAD, shape(config.vocabSize(), config.hiddenSize()));
    for (int l = 0; l < config.numHiddenLayers(); l++) {
      for (LayerParameter p : LayerParameter.values()) {
        if (p.present(config)) {
          parameters.add(p.key(l), shape(p.shape(config)));
        }
      }
    }
    plan.add("parameters", parameters);

    JsonObject files = new JsonObject();
    files.addProperty("llama_step", write(dir, "llama_step.pt",
        TorchScriptArchive.build(ScriptedCausalLm.CLASS_NAME, TorchScriptArchive.source(ScriptedCausalLm.KERNEL))));
    files.addProperty("fused_decode", write(dir, "fused_decode.pt",
        TorchScriptArchive.build(FusedDecode.OPS_CLASS, TorchScriptArchive.source(FusedDecode.OPS))));
    files.addProperty("decode_kernels", write(dir, "decode_kernels.cu",
        TorchScriptArchive.source(FusedDecode.KERNELS).getBytes(StandardCharsets.UTF_8)));
    plan.add("files", files);
    JsonArray compile = new JsonArray();
    FusedDecode.compileOptions(config, precision).forEach(compile::add);
    plan.add("nvrtc_options", compile);

    FusedOptions.Attention attention = o.get(FusedOptions.FUSED_ATTENTION);
    boolean perWarp = attention == FusedOptions.Attention.KERNELS && FusedDecode.attentionPerWarp(config);
    plan.addProperty("fused_attention", attention.label());
    plan.addProperty("capacity", o.get(CAPACITY));
    JsonObject launches = new JsonObject();
    for (String b : o.get(BATCH_SIZES).split(",")) {
      int batch = Integer.parseInt(b.trim());
      LaunchPlan lp = LaunchPlan.of(config, batch, o.get(CAPACITY), perWarp, o.get(FusedOptions.FUSED_ATTENTION_BLOCKS));
      JsonObject l = new JsonObject();
      l.add("rms_norm", dims(lp.rmsNorm()));
      l.add("rotary_cache_write", dims(lp.rotaryCacheWrite()));
      l.add("silu_mul", dims(lp.siluMul()));
      l.add("rms_norm_fp8", dims(lp.rmsNormFp8()));
      l.add("quantize_fp8", dims(lp.quantizeFp8()));
      l.add("silu_mul_fp8", dims(lp.siluMulFp8()));
      l.addProperty("attention_kernel", lp.attentionKernel());
      l.add("attention", dims(lp.attention()));
      l.add("attention_combine", lp.combines() ? dims(lp.attentionCombine()) : null);
      l.addProperty("split_size", lp.splitSize());
      l.addProperty("splits", lp.splits());
      JsonObject byKernel = new JsonObject(); // both kernels' splits, for tools that run each
      for (boolean warp : new boolean[] {true, false}) {
        LaunchPlan k = LaunchPlan.of(config, batch, o.get(CAPACITY), warp, o.get(FusedOptions.FUSED_ATTENTION_BLOCKS));
        JsonObject a = dims(k.attention());
        a.addProperty("split_size", k.splitSize());
        a.addProperty("splits", k.splits());
        a.addProperty("combine", k.combines());
        byKernel.add(k.attentionKernel(), a);
      }
      l.add("attention_by_kernel", byKernel);
      launches.add(String.valueOf(batch), l);
    }
    plan.add("launches", launches);
    return plan;
  }

  private static String write(Path dir, String name, byte[] bytes) throws IOException {
    Files.write(dir.resolve(name), bytes);
    return name;
  }

  private static JsonArray shape(long... dims) {
    JsonArray a = new JsonArray();
    for (long d : dims) {
      a.add(new JsonPrimitive(d));
    }
    return a;
  }

  private static JsonObject dims(LaunchPlan.Dims d) {
    JsonObject o = new JsonObject();
    JsonArray grid = new JsonArray();
    JsonArray block = new JsonArray();
    for (int i = 0; i < 3; i++) {
      grid.add(d.grid()[i]);
      block.add(d.block()[i]);
    }
    o.add("grid", grid);
    o.add("block", block);
    return o;
  }
}
