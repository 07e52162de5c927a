package io.sparkinfer.tune;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * A search space: the axes a study varies, each named for the option it sets. A trial is one value per axis
 * ({@code Map<axis name, value text>}, in the axes' order).
 *
 * <p>A space file (JSON or YAML; {@code conf/sweep/} holds examples) maps each axis name to its values, as a
 * list or as the text {@link Axis#parse} reads, optionally under a top-level {@code axes} key:
 *
 * <pre>
 * axes:
 *   batch-size: 1..1024:log
 *   precision: [fp16, bf16]
 *   threads: [1, 2]
 * </pre>
 */
public record Space(List<Axis> axes) {

  /** Largest space file read. */
  static final long MAX_FILE_BYTES = 1 << 20;

  public Space {
    axes = List.copyOf(axes);
    if (axes.isEmpty()) {
      throw new IllegalArgumentException("a search space needs at least one axis");
    }
    if (axes.stream().map(Axis::name).distinct().count() != axes.size()) {
      throw new IllegalArgumentException("a search space names an axis twice: " + names(axes));
    }
  }

  /** The axis called {@code name}, or null. */
  public Axis axis(String name) {
    for (Axis a : axes) {
      if (a.name().equals(name)) {
        return a;
      }
    }
    return null;
  }

  public int dimensions() {
    return axes.size();
  }

  /** How many trials a grid over this space has (at most {@link Long#MAX_VALUE}). */
  public long gridSize() {
    long n = 1;
    for (Axis a : axes) {
      n = Math.multiplyExact(n, a.grid().size());
    }
    return n;
  }

  /** The trial at a point of the unit cube (one coordinate per axis, in order). */
  public Map<String, String> at(double[] point) {
    if (point.length != axes.size()) {
      throw new IllegalArgumentException("a point of " + point.length + " coordinates in a space of " + axes.size());
    }
    Map<String, String> trial = new LinkedHashMap<>();
    for (int i = 0; i < point.length; i++) {
      trial.put(axes.get(i).name(), axes.get(i).at(point[i]));
    }
    return trial;
  }

  /**
   * Reads a space file, JSON ({@code .json}) or YAML (anything else).
   *
   * @throws IllegalArgumentException naming the file and what is wrong in it
   */
  public static Space load(Path file) {
    String text;
    try {
      if (Files.size(file) > MAX_FILE_BYTES) {
        throw new IllegalArgumentException("space file " + file + " is larger than " + MAX_FILE_BYTES + " bytes");
      }
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read the space file " + file + ": " + e.getMessage(), e);
    }
    Map<String, Object> map;
    try {
      map = file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".json") ? json(text) : yaml(text);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("space file " + file + " is not valid "
          + (file.toString().endsWith(".json") ? "JSON" : "YAML") + ": " + e.getMessage(), e);
    }
    try {
      return fromMap(map);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("space file " + file + ": " + e.getMessage(), e);
    }
  }

  /** A space from a map of axis name to a list of values or an axis text, possibly under {@code axes}. */
  @SuppressWarnings("unchecked")
  static Space fromMap(Map<String, Object> map) {
    Object inner = map.get("axes");
    if (inner != null) {
      if (!(inner instanceof Map<?, ?>)) {
        throw new IllegalArgumentException("'axes' must map axis names to values");
      }
      if (map.size() > 1) {
        throw new IllegalArgumentException("unexpected keys beside 'axes': " + map.keySet());
      }
      map = (Map<String, Object>) inner;
    }
    List<Axis> axes = new ArrayList<>();
    for (Map.Entry<String, Object> e : map.entrySet()) {
      Object v = e.getValue();
      if (v instanceof List<?> list) {
        List<String> values = new ArrayList<>();
        for (Object o : list) {
          values.add(text(o));
        }
        axes.add(Axis.of(e.getKey(), values));
      } else if (v instanceof String || v instanceof Number || v instanceof Boolean) {
        axes.add(Axis.parse(e.getKey(), text(v)));
      } else {
        throw new IllegalArgumentException("axis " + e.getKey() + " must be a list of values or a text such as "
            + "1..1024:log, got " + v);
      }
    }
    return new Space(axes);
  }

  private static String text(Object o) {
    if (o instanceof Double d && d == Math.rint(d)) {
      return Long.toString(d.longValue()); // JSON numbers arrive as doubles
    }
    return String.valueOf(o);
  }

  private static Map<String, Object> json(String text) {
    JsonElement e;
    try {
      e = JsonParser.parseString(text);
    } catch (JsonParseException ex) {
      throw new IllegalArgumentException(ex.getMessage(), ex);
    }
    if (!e.isJsonObject()) {
      throw new IllegalArgumentException("the top level must be an object");
    }
    return toMap(e.getAsJsonObject());
  }

  private static Map<String, Object> toMap(JsonObject o) {
    Map<String, Object> out = new LinkedHashMap<>();
    for (Map.Entry<String, JsonElement> e : o.entrySet()) {
      out.put(e.getKey(), toJava(e.getValue()));
    }
    return out;
  }

  private static Object toJava(JsonElement e) {
    if (e.isJsonObject()) {
      return toMap(e.getAsJsonObject());
    }
    if (e.isJsonArray()) {
      List<Object> out = new ArrayList<>();
      e.getAsJsonArray().forEach(x -> out.add(toJava(x)));
      return out;
    }
    if (e.isJsonNull()) {
      return null;
    }
    var p = e.getAsJsonPrimitive();
    return p.isNumber() ? (Object) p.getAsDouble() : p.isBoolean() ? (Object) p.getAsBoolean() : p.getAsString();
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> yaml(String text) {
    LoaderOptions options = new LoaderOptions();
    options.setAllowDuplicateKeys(false);
    options.setMaxAliasesForCollections(10);
    Object loaded = new Yaml(new SafeConstructor(options)).load(text);
    if (!(loaded instanceof Map<?, ?>)) {
      throw new IllegalArgumentException("the top level must be a map of axis names to values");
    }
    return (Map<String, Object>) loaded;
  }

  private static String names(List<Axis> axes) {
    List<String> out = new ArrayList<>();
    axes.forEach(a -> out.add(a.name()));
    return out.toString();
  }
}
