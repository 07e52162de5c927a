package io.sparkinfer.cli;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.ErrorCode;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.RequestOptions;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.options.OptionValues;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads prompt lines ({@code {"id": ..., "prompt": ...}} or, already tokenized,
 * {@code {"id": ..., "prompt_token_ids": [...]}}), optionally with per-line {@code max_new_tokens},
 * {@code temperature}, {@code top_k}, {@code top_p}, {@code seed}, {@code stop}) and writes completion
 * lines. A line that cannot be read becomes an error line; it never stops the run.
 */
public final class JsonlRequests {

  private static final Gson GSON = new com.google.gson.GsonBuilder().disableHtmlEscaping().serializeNulls().create();

  private JsonlRequests() {}

  /**
   * Defaults applied to every line, overridable per line.
   *
   * @param sampling the sampling options, with the run's seed
   */
  public record Defaults(int maxNewTokens, SamplingParams sampling, List<String> stop, boolean ignoreEos) {

    /** The defaults the {@link RequestOptions} give. */
    public Defaults(OptionValues o) {
      this(o.get(RequestOptions.MAX_NEW_TOKENS), RequestOptions.sampling(o, o.get(RequestOptions.SEED)),
          o.get(RequestOptions.STOP), o.get(RequestOptions.IGNORE_EOS));
    }
  }

  /**
   * One parsed input line: a request, or the error completion that stands for it.
   *
   * @param id the id as it appeared in the input (a number stays a number), or the line number
   */
  public record Line(JsonElement id, GenerationRequest request, Completion error) {}

  /** Parses line {@code lineNumber} (1-based). */
  public static Line parse(String text, long lineNumber, Defaults defaults) {
    JsonElement fallbackId = GSON.toJsonTree("line-" + lineNumber);
    JsonObject o;
    try {
      JsonElement e = JsonParser.parseString(text);
      if (!e.isJsonObject()) {
        return invalid(fallbackId, "line " + lineNumber + " is not a JSON object");
      }
      o = e.getAsJsonObject();
    } catch (JsonParseException e) {
      return invalid(fallbackId, "line " + lineNumber + " is not valid JSON: " + rootMessage(e));
    }
    JsonElement id = o.has("id") && !o.get("id").isJsonNull() ? o.get("id") : fallbackId;
    if (!id.isJsonPrimitive()) {
      return invalid(fallbackId, "line " + lineNumber + ": id must be a string or a number, got " + id);
    }
    String idText = id.getAsString();
    JsonElement prompt = o.get("prompt");
    if (prompt != null && !prompt.isJsonNull() && !(prompt.isJsonPrimitive() && prompt.getAsJsonPrimitive().isString())) {
      return invalid(id, "line " + lineNumber + ": prompt must be a string, got " + prompt);
    }
    try {
      SamplingParams base = defaults.sampling();
      long seed = o.has("seed") ? o.get("seed").getAsLong() : SamplingParams.requestSeed(base.seed(), idText);
      SamplingParams sampling = new SamplingParams(
          o.has("temperature") ? o.get("temperature").getAsDouble() : base.temperature(),
          o.has("top_k") ? o.get("top_k").getAsInt() : base.topK(),
          o.has("top_p") ? o.get("top_p").getAsDouble() : base.topP(),
          seed);
      List<String> stop = defaults.stop();
      if (o.has("stop")) {
        stop = new ArrayList<>();
        JsonElement s = o.get("stop");
        if (s.isJsonArray()) {
          for (JsonElement x : s.getAsJsonArray()) {
            stop.add(x.getAsString());
          }
        } else {
          stop.add(s.getAsString());
        }
      }
      int maxNew = o.has("max_new_tokens") ? o.get("max_new_tokens").getAsInt() : defaults.maxNewTokens();
      String promptText = prompt == null || prompt.isJsonNull() ? null : prompt.getAsString();
      long[] tokenIds = null;
      if (o.has("prompt_token_ids")) {
        JsonArray ids = o.getAsJsonArray("prompt_token_ids");
        tokenIds = new long[ids.size()];
        for (int i = 0; i < tokenIds.length; i++) {
          tokenIds[i] = ids.get(i).getAsLong();
        }
      }
      return new Line(id, new GenerationRequest(idText, promptText, maxNew, sampling, stop, defaults.ignoreEos(),
          tokenIds), null);
    } catch (IllegalArgumentException | IllegalStateException | UnsupportedOperationException e) {
      return invalid(id, "line " + lineNumber + ": " + e.getMessage());
    }
  }

  private static Line invalid(JsonElement id, String message) {
    return new Line(id, null, Completion.error(id.getAsString(), 0, ErrorCode.INVALID_REQUEST, message));
  }

  private static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null) {
      t = t.getCause();
    }
    return t.getMessage();
  }

  /** The output line of a completion, keeping the input's id as it was written. */
  public static String toJson(JsonElement id, Completion c) {
    JsonObject o = new JsonObject();
    o.add("id", id);
    o.add("completion", c.text() == null ? JsonNull.INSTANCE : GSON.toJsonTree(c.text()));
    JsonArray ids = new JsonArray();
    for (long t : c.outputTokenIds()) {
      ids.add(t);
    }
    o.add("output_token_ids", ids);
    o.addProperty("prompt_tokens", c.promptTokens());
    o.addProperty("completion_tokens", c.completionTokens());
    o.addProperty("finish_reason", c.finishReason().label());
    o.add("error_code", c.errorCode() == null ? JsonNull.INSTANCE : GSON.toJsonTree(c.errorCode()));
    o.add("error", c.errorMessage() == null ? JsonNull.INSTANCE : GSON.toJsonTree(c.errorMessage()));
    o.addProperty("latency_ms", Math.round(c.latencyMs() * 1000) / 1000.0);
    return GSON.toJson(o);
  }
}
