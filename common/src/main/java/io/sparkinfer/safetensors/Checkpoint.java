package io.sparkinfer.safetensors;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.sparkinfer.base.ModelFiles;
import io.sparkinfer.base.ModelLoadException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The weights of a checkpoint directory: one {@code model.safetensors}, the shards named by
 * {@code model.safetensors.index.json}, or, lacking both, every {@code *.safetensors} file in it.
 *
 * <p>Only safetensors are loaded. Pickle-based weights ({@code *.bin}, {@code *.pt}, {@code *.pth}) are
 * refused: unpickling runs code chosen by whoever wrote the file. Every file read must stay inside the
 * directory ({@link ModelFiles}): no shard name with {@code ..}, no link to a file elsewhere.
 */
public final class Checkpoint {

  static final String SINGLE_FILE = "model.safetensors";
  static final String INDEX_FILE = "model.safetensors.index.json";
  static final long MAX_INDEX_BYTES = 64L << 20;

  private final Path dir;
  private final Map<String, TensorInfo> tensors;

  private Checkpoint(Path dir, Map<String, TensorInfo> tensors) {
    this.dir = dir;
    this.tensors = Collections.unmodifiableMap(tensors);
  }

  /** Finds and validates the safetensors files of a checkpoint directory. */
  public static Checkpoint open(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new ModelLoadException("model directory " + dir + " does not exist or is not a directory");
    }
    List<Path> files = weightFiles(dir);
    Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    for (Path file : files) {
      ModelFiles.checkInside(dir, file);
      for (TensorInfo t : SafetensorsFile.open(file).tensors().values()) {
        TensorInfo previous = tensors.put(t.name(), t);
        if (previous != null) {
          throw new SafetensorsException("tensor '" + t.name() + "' appears in both " + previous.file().getFileName()
              + " and " + file.getFileName());
        }
      }
    }
    return new Checkpoint(dir, tensors);
  }

  private static List<Path> weightFiles(Path dir) {
    Path index = dir.resolve(INDEX_FILE);
    if (Files.exists(index)) {
      return shardsFromIndex(dir, index);
    }
    Path single = dir.resolve(SINGLE_FILE);
    if (Files.exists(single)) {
      return List.of(single);
    }
    List<Path> found = list(dir, ".safetensors");
    if (!found.isEmpty()) {
      return found;
    }
    List<Path> pickles = new ArrayList<>();
    for (String ext : new String[] {".bin", ".pt", ".pth", ".ckpt", ".pkl"}) {
      pickles.addAll(list(dir, ext));
    }
    if (!pickles.isEmpty()) {
      throw new ModelLoadException(dir + " holds only pickle-based weights (" + pickles.get(0).getFileName()
          + "). sparkinfer loads only safetensors: unpickling a .bin/.pt/.pth file can run arbitrary code. "
          + "Convert the checkpoint once where you trust it, e.g. in Python: "
          + "AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)");
    }
    throw new ModelLoadException("no weights in " + dir + ": expected " + SINGLE_FILE + " or " + INDEX_FILE);
  }

  private static List<Path> shardsFromIndex(Path dir, Path index) {
    JsonObject weightMap;
    ModelFiles.checkInside(dir, index);
    try {
      if (Files.size(index) > MAX_INDEX_BYTES) {
        throw new SafetensorsException(index + " is larger than " + MAX_INDEX_BYTES + " bytes");
      }
      JsonElement root = JsonParser.parseString(Files.readString(index, StandardCharsets.UTF_8));
      if (!root.isJsonObject() || !root.getAsJsonObject().has("weight_map")
          || !root.getAsJsonObject().get("weight_map").isJsonObject()) {
        throw new SafetensorsException(index + ": expected an object with a weight_map object");
      }
      weightMap = root.getAsJsonObject().getAsJsonObject("weight_map");
    } catch (IOException e) {
      throw new SafetensorsException("cannot read " + index + ": " + e.getMessage(), e);
    } catch (JsonParseException e) {
      throw new SafetensorsException(index + " is not valid JSON: " + e.getMessage(), e);
    }
    TreeSet<String> shardNames = new TreeSet<>();
    for (Map.Entry<String, JsonElement> e : weightMap.entrySet()) {
      JsonElement shard = e.getValue();
      if (!shard.isJsonPrimitive() || !shard.getAsJsonPrimitive().isString()) {
        throw new SafetensorsException(index + ": weight_map entry '" + e.getKey() + "' must name a shard file, got "
            + shard);
      }
      shardNames.add(shard.getAsString());
    }
    List<Path> shards = new ArrayList<>();
    Path base = dir.toAbsolutePath().normalize();
    for (String name : shardNames) {
      Path shard = base.resolve(name).normalize();
      if (!base.equals(shard.getParent()) || !name.endsWith(".safetensors")) {
        throw new SafetensorsException(index + ": shard '" + name + "' must be a .safetensors file in " + dir);
      }
      if (!Files.exists(shard)) {
        throw new SafetensorsException(index + " names shard " + name + ", which is missing from " + dir);
      }
      shards.add(shard);
    }
    return shards;
  }

  private static List<Path> list(Path dir, String extension) {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().endsWith(extension)).sorted().toList();
    } catch (IOException e) {
      throw new ModelLoadException("cannot list " + dir + ": " + e.getMessage(), e);
    }
  }

  public Path dir() {
    return dir;
  }

  /** All tensors of all files, by name. */
  public Map<String, TensorInfo> tensors() {
    return tensors;
  }

  /** A tensor by name; a clear error naming the directory when the checkpoint lacks it. */
  public TensorInfo tensor(String name) {
    TensorInfo t = tensors.get(name);
    if (t == null) {
      throw new ModelLoadException("checkpoint " + dir + " has no tensor '" + name + "'");
    }
    return t;
  }

  public boolean has(String name) {
    return tensors.containsKey(name);
  }
}
