package io.sparkinfer.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.TokenizersLibrary;
import io.sparkinfer.base.ModelFiles;
import io.sparkinfer.base.ModelLoadException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A checkpoint's {@code tokenizer.json}, through DJL's binding of Hugging Face {@code tokenizers}: special
 * tokens added as the tokenizer's post-processor says (a BOS for Llama, none for Qwen2), no truncation, no
 * padding. Decoding skips special tokens.
 */
public final class TextTokenizer implements AutoCloseable {

  /**
   * Upper bound on {@code tokenizer.json}'s size, checked before the native library reads it: the largest
   * published ones (vocabularies of about 256k entries with their merges) are near 35 MB.
   */
  static final long MAX_TOKENIZER_BYTES = 256L << 20;

  private final HuggingFaceTokenizer tokenizer;

  private TextTokenizer(HuggingFaceTokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  /** Loads {@code tokenizer.json} from a checkpoint directory. */
  public static TextTokenizer load(Path modelDir) {
    Path file = modelDir.resolve("tokenizer.json");
    ModelFiles.checkInside(modelDir, file);
    if (!Files.isRegularFile(file)) {
      throw new ModelLoadException("no tokenizer.json in " + modelDir + " (sparkinfer needs the fast-tokenizer file)");
    }
    try {
      long size = Files.size(file);
      if (size > MAX_TOKENIZER_BYTES) {
        throw new ModelLoadException(file + " has " + size + " bytes, over the " + MAX_TOKENIZER_BYTES
            + " this engine reads: not a tokenizer, or a corrupt one");
      }
      return new TextTokenizer(HuggingFaceTokenizer.newInstance(file, Map.of(
          "addSpecialTokens", "true",
          "truncation", "false",
          "padding", "false",
          "modelMaxLength", String.valueOf(Integer.MAX_VALUE))));
    } catch (ModelLoadException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      throw new ModelLoadException("cannot load " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * The ids of a text, special tokens included as the tokenizer defines them. Only the ids: DJL's {@code Encoding}
   * would also fetch the text's tokens, words, masks and character spans, one native call each (with the prompt
   * tokenized one at a time, that took a sixth of {@code generate.sh}'s time on 8,192 prompts).
   */
  public long[] encode(String text) {
    long encoding = TokenizersLibrary.LIB.encode(tokenizer.getHandle(), text, true);
    try {
      return TokenizersLibrary.LIB.getTokenIds(encoding);
    } finally {
      TokenizersLibrary.LIB.deleteEncoding(encoding);
    }
  }

  /**
   * The ids of each text, as {@link #encode} gives them, in one call: Hugging Face {@code tokenizers} encodes a batch
   * on several threads.
   */
  public long[][] encodeAll(List<String> texts) {
    if (texts.isEmpty()) {
      return new long[0][];
    }
    // Only the ids, as encode (DJL's Encoding objects took most of the job's planning time on long prompts)
    long[] encodings = TokenizersLibrary.LIB.batchEncode(tokenizer.getHandle(), texts.toArray(String[]::new), true);
    try {
      long[][] ids = new long[encodings.length][];
      for (int i = 0; i < encodings.length; i++) {
        ids[i] = TokenizersLibrary.LIB.getTokenIds(encodings[i]);
      }
      return ids;
    } finally {
      for (long e : encodings) {
        TokenizersLibrary.LIB.deleteEncoding(e);
      }
    }
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
