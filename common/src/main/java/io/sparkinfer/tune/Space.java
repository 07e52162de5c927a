package io.sparkinfer.tune;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;
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

  /** Deepest nesting of a JSON space file (a space needs 3: axes, an axis, its list), as SnakeYAML's default. */
  private static final int MAX_JSON_DEPTH = 50;

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

  /** How many trials a grid over this space has, or {@link Long#MAX_VALUE} when that is more. */
  public long gridSize() {
    long n = 1;
    for (Axis a : axes) {
      int size = a.grid().size();
      if (n > Long.MAX_VALUE / size) {
        return Long.MAX_VALUE;
      }
      n *= size;
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
    boolean isJson = file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".json");
    Map<String, Object> map;
    try {
      map = isJson ? json(text) : yaml(text);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("space file " + file + " is not valid " + (isJson ? "JSON" : "YAML") + ": "
          + e.getMessage(), e);
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
    for (Map.Entry<?, ?> e : map.entrySet()) {
      String name = String.valueOf(e.getKey()); // YAML reads a key such as 1 or true as a number or a boolean
      Object v = e.getValue();
      if (v instanceof List<?> list) {
        List<String> values = new ArrayList<>();
        for (Object o : list) {
          values.add(text(o));
        }
        axes.add(Axis.of(name, values));
      } else if (v instanceof String || v instanceof Number || v instanceof Boolean) {
        axes.add(Axis.parse(name, text(v)));
      } else {
        throw new IllegalArgumentException("axis " + name + " must be a list of values or a text such as "
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

  /** Reads JSON as Gson's {@code JsonParser} does (leniently), but refuses a key given twice in an object. */
  @SuppressWarnings("unchecked")
  private static Map<String, Object> json(String text) {
    Object top;
    try {
      JsonReader in = new JsonReader(new StringReader(text));
      in.setStrictness(Strictness.LENIENT);
      top = readJson(in, 0);
      if (in.peek() != JsonToken.END_DOCUMENT) {
        throw new IllegalArgumentException("more than one value at the top level, at " + in.getPath());
      }
    } catch (IOException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
    if (!(top instanceof Map<?, ?>)) {
      throw new IllegalArgumentException("the top level must be an object");
    }
    return (Map<String, Object>) top;
  }

  /** A JSON value as maps, lists, doubles, booleans, texts and nulls. */
  private static Object readJson(JsonReader in, int depth) throws IOException {
    if (depth > MAX_JSON_DEPTH) {
      throw new IllegalArgumentException("nested more than " + MAX_JSON_DEPTH + " deep, at " + in.getPath());
    }
    switch (in.peek()) {
      case BEGIN_OBJECT -> {
        Map<String, Object> out = new LinkedHashMap<>();
        in.beginObject();
        while (in.hasNext()) {
          String key = in.nextName();
          if (out.containsKey(key)) {
            throw new IllegalArgumentException("key '" + key + "' appears twice, at " + in.getPath());
          }
          out.put(key, readJson(in, depth + 1));
        }
        in.endObject();
        return out;
      }
      case BEGIN_ARRAY -> {
        List<Object> out = new ArrayList<>();
        in.beginArray();
        while (in.hasNext()) {
          out.add(readJson(in, depth + 1));
        }
        in.endArray();
        return out;
      }
      case NUMBER -> {
        return in.nextDouble();
      }
      case BOOLEAN -> {
        return in.nextBoolean();
      }
      case NULL -> {
        in.nextNull();
        return null;
      }
      case STRING -> {
        return in.nextString();
      }
      default -> throw new IllegalArgumentException("unexpected " + in.peek() + " at " + in.getPath());
    }
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
