package io.sparkinfer.generate;

import com.google.gson.JsonElement;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.sparkinfer.base.ModelFiles;
import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.model.ModelConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The end-of-sequence ids of a checkpoint: {@code generation_config.json}'s {@code eos_token_id} (one id or
 * a list) when the file exists, else {@code config.json}'s.
 *
 * @param eosTokenIds the ids that end a sequence
 */
public record GenerationConfig(Set<Long> eosTokenIds) {

  public GenerationConfig {
    eosTokenIds = Set.copyOf(eosTokenIds);
  }

  /** Reads {@code generation_config.json} from a checkpoint directory, falling back to the model config. */
  public static GenerationConfig load(Path modelDir, ModelConfig config) {
    Path file = modelDir.resolve("generation_config.json");
    ModelFiles.checkInside(modelDir, file);
    if (!Files.exists(file)) {
      return new GenerationConfig(new LinkedHashSet<>(config.eosTokenIds()));
    }
    try {
      if (Files.size(file) > 1 << 20) {
        throw new ModelLoadException(file + " is over 1 MiB: not a generation config");
      }
      JsonElement root = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8));
      if (!root.isJsonObject()) {
        throw new ModelLoadException(file + " must hold a JSON object");
      }
      JsonElement eos = root.getAsJsonObject().get("eos_token_id");
      List<Long> ids = new ArrayList<>();
      if (eos != null && !eos.isJsonNull()) {
        if (eos.isJsonArray()) {
          eos.getAsJsonArray().forEach(e -> ids.add(e.getAsLong()));
        } else {
          ids.add(eos.getAsLong());
        }
      }
      return new GenerationConfig(new LinkedHashSet<>(ids.isEmpty() ? config.eosTokenIds() : ids));
    } catch (IOException e) {
      throw new ModelLoadException("cannot read " + file + ": " + e.getMessage(), e);
    } catch (JsonParseException | IllegalStateException | NumberFormatException e) {
      throw new ModelLoadException(file + " is not a valid generation config: " + e.getMessage(), e);
    }
  }
}
