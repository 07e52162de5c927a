package io.sparkinfer.testing;

import io.sparkinfer.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Writes a Qwen2 checkpoint of random fp32 weights in any shape (layers, heads, widths), with the tokenizer of
 * {@code qwen2-tiny} (vocabulary 512): for tests of shapes the fixtures do not have, such as splits over more
 * layers and heads.
 */
public final class RandomCheckpoint {

  private RandomCheckpoint() {}

  /**
   * @return {@code dir}, holding config.json, model.safetensors, tokenizer.json and tokenizer_config.json
   */
  public static Path write(Path dir, int layers, int heads, int kvHeads, int headDim, int hidden, int intermediate,
      long seed) {
    int vocab = 512;
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("config.json"), String.format(Locale.ROOT, """
          {"model_type": "qwen2", "vocab_size": %d, "hidden_size": %d, "intermediate_size": %d,
           "num_hidden_layers": %d, "num_attention_heads": %d, "num_key_value_heads": %d, "head_dim": %d,
           "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 256,
           "tie_word_embeddings": false, "torch_dtype": "float32", "eos_token_id": 0}""",
          vocab, hidden, intermediate, layers, heads, kvHeads, headDim));
      SplittableRandom random = new SplittableRandom(seed);
      SafetensorsWriter w = new SafetensorsWriter();
      w.f32("model.embed_tokens.weight", new long[] {vocab, hidden}, values(random, vocab * hidden, 0.5f));
      for (int l = 0; l < layers; l++) {
        String p = "model.layers." + l + ".";
        w.f32(p + "input_layernorm.weight", new long[] {hidden}, ones(random, hidden));
        w.f32(p + "post_attention_layernorm.weight", new long[] {hidden}, ones(random, hidden));
        w.f32(p + "self_attn.q_proj.weight", new long[] {heads * headDim, hidden}, values(random, heads * headDim * hidden, 0.1f));
        w.f32(p + "self_attn.q_proj.bias", new long[] {heads * headDim}, values(random, heads * headDim, 0.1f));
        for (String kv : new String[] {"k", "v"}) {
          w.f32(p + "self_attn." + kv + "_proj.weight", new long[] {kvHeads * headDim, hidden},
              values(random, kvHeads * headDim * hidden, 0.1f));
          w.f32(p + "self_attn." + kv + "_proj.bias", new long[] {kvHeads * headDim}, values(random, kvHeads * headDim, 0.1f));
        }
        w.f32(p + "self_attn.o_proj.weight", new long[] {hidden, heads * headDim}, values(random, hidden * heads * headDim, 0.1f));
        w.f32(p + "mlp.gate_proj.weight", new long[] {intermediate, hidden}, values(random, intermediate * hidden, 0.1f));
        w.f32(p + "mlp.up_proj.weight", new long[] {intermediate, hidden}, values(random, intermediate * hidden, 0.1f));
        w.f32(p + "mlp.down_proj.weight", new long[] {hidden, intermediate}, values(random, hidden * intermediate, 0.1f));
      }
      w.f32("model.norm.weight", new long[] {hidden}, ones(random, hidden));
      w.f32("lm_head.weight", new long[] {vocab, hidden}, values(random, vocab * hidden, 0.5f));
      w.write(dir.resolve("model.safetensors"));
      Path tokenizer = Fixtures.model("qwen2-tiny");
      for (String f : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
        Files.copy(tokenizer.resolve(f), dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static float[] values(SplittableRandom random, int n, float scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) ((random.nextDouble() * 2 - 1) * scale);
    }
    return v;
  }

  private static float[] ones(SplittableRandom random, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (1 + (random.nextDouble() - 0.5) * 0.2);
    }
    return v;
  }
}
