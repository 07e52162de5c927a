package io.sparkinfer.engine;

import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.generate.GenerationConfig;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.safetensors.Checkpoint;
import io.sparkinfer.tokenizer.TextTokenizer;
import java.nio.file.Path;

/**
 * Checks a checkpoint directory without loading it, so a bad model fails where it is named (the batch job's
 * driver, before any Spark work) rather than on every executor: {@code config.json} (sizes bounded),
 * {@code generation_config.json}, the safetensors headers (pickle-only weights refused, every offset and size
 * bounded by its file), every tensor config.json implies (name, shape, dtype), {@code tokenizer.json} (loaded
 * and closed), and every file inside the directory ({@link io.sparkinfer.base.ModelFiles}).
 *
 * <p>What it reads is bounded: config.json 4 MiB, each header 100 MiB, the shard index 64 MiB, tokenizer.json
 * 256 MiB. No weight is read and no device memory is taken.
 */
public final class ModelCheck {

  private ModelCheck() {}

  /**
   * Checks {@code dir} as {@link LlmEngine#load} would read it.
   *
   * @return the model's config
   * @throws ModelLoadException naming the file and what is wrong with it
   */
  public static ModelConfig check(Path dir) {
    ModelConfig config = ModelConfig.load(dir);
    GenerationConfig.load(dir, config);
    Checkpoint checkpoint = Checkpoint.open(dir);
    ModelWeights.check(checkpoint, config);
    try (TextTokenizer tokenizer = TextTokenizer.load(dir)) {
      return config;
    }
  }
}
