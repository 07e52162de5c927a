package io.sparkinfer.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.sparkinfer.base.ModelLoadException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A checkpoint's {@code tokenizer.json}, through DJL's binding of Hugging Face {@code tokenizers}: special
 * tokens added as the tokenizer's post-processor says (a BOS for Llama, none for Qwen2), no truncation, no
 * padding. Decoding skips special tokens.
 */
public final class TextTokenizer implements AutoCloseable {

  private final HuggingFaceTokenizer tokenizer;

  private TextTokenizer(HuggingFaceTokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  /** Loads {@code tokenizer.json} from a checkpoint directory. */
  public static TextTokenizer load(Path modelDir) {
    Path file = modelDir.resolve("tokenizer.json");
    if (!Files.isRegularFile(file)) {
      throw new ModelLoadException("no tokenizer.json in " + modelDir + " (sparkinfer needs the fast-tokenizer file)");
    }
    try {
      return new TextTokenizer(HuggingFaceTokenizer.newInstance(file, Map.of(
          "addSpecialTokens", "true",
          "truncation", "false",
          "padding", "false",
          "modelMaxLength", String.valueOf(Integer.MAX_VALUE))));
    } catch (IOException | RuntimeException e) {
      throw new ModelLoadException("cannot load " + file + ": " + e.getMessage(), e);
    }
  }

  /** The ids of a text, special tokens included as the tokenizer defines them. */
  public long[] encode(String text) {
    return tokenizer.encode(text).getIds();
  }

  /** The text of ids, special tokens skipped. */
  public String decode(long[] ids) {
    return tokenizer.decode(ids, true);
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
