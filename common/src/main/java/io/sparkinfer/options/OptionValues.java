package io.sparkinfer.options;

import java.io.Serializable;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The typed values of a table's options, every option of it present (its default when nothing gave it a
 * value). Immutable and serializable (they travel to Spark executors); equal when every value is equal, so
 * values can key a cache of loaded engines. They also remember which options were given (on the command line,
 * in the conf or the environment, or set with {@link #with}) rather than left at their default
 * ({@link #isGiven}): a default seed, for one, promises less than a seed somebody chose. That record takes no part in
 * equality.
 */
public final class OptionValues implements Serializable {

  private static final long serialVersionUID = 1L;

  /** By option name; values may be null (a choice left on auto). */
  private final Map<String, Object> values;
  /** Names of the options that were given a value rather than left at their default. */
  private final Set<String> given;

  private OptionValues(Map<String, Object> values, Set<String> given) {
    this.values = values;
    this.given = given;
  }

  /** Every option of {@code options} at its default. */
  public static OptionValues defaults(List<? extends Option<?>> options) {
    Map<String, Object> v = new HashMap<>();
    options.forEach(o -> v.put(o.name(), o.defaultValue()));
    return new OptionValues(v, Set.of());
  }

  /**
   * Values given as a map by option name; the map must hold a value for every option of the table.
   *
   * @param given the names of the options that were given (the others are at their defaults)
   */
  static OptionValues of(Map<String, Object> values, Set<String> given) {
    return new OptionValues(new HashMap<>(values), Set.copyOf(given));
  }

  /**
   * The value of {@code option}.
   *
   * @throws IllegalStateException when the option is not one of these values' table
   */
  @SuppressWarnings("unchecked")
  public <T> T get(Option<T> option) {
    if (!values.containsKey(option.name())) {
      throw new IllegalStateException(option + " is not an option of this table (options: " + values.keySet() + ")");
    }
    return (T) values.get(option.name());
  }

  /** Whether {@code option} belongs to these values' table. */
  public boolean has(Option<?> option) {
    return values.containsKey(option.name());
  }

  /**
   * Whether {@code option} was given a value (command line, conf, environment, or {@link #with}) rather than left
   * at its default. A value given equal to the default counts as given.
   */
  public boolean isGiven(Option<?> option) {
    get(option); // must be one of the table's
    return given.contains(option.name());
  }

  /** The values of {@code options} alone (each must be one of these values' table). */
  public OptionValues only(List<? extends Option<?>> options) {
    Map<String, Object> v = new HashMap<>();
    Set<String> g = new HashSet<>();
    for (Option<?> o : options) {
      v.put(o.name(), get(o));
      if (given.contains(o.name())) {
        g.add(o.name());
      }
    }
    return new OptionValues(v, Set.copyOf(g));
  }

  /** These values with {@code option} set to {@code value} (parsed from its formatted text, so validated). */
  public <T> OptionValues with(Option<T> option, T value) {
    get(option); // must be one of the table's
    T checked = value == null ? null : option.parse(option.format(value));
    Map<String, Object> v = new HashMap<>(values);
    v.put(option.name(), checked);
    return new OptionValues(v, plus(option));
  }

  /** These values with {@code option} set from its command-line text. */
  public OptionValues withText(Option<?> option, String text) {
    get(option);
    Map<String, Object> v = new HashMap<>(values);
    v.put(option.name(), option.parse(text));
    return new OptionValues(v, plus(option));
  }

  private Set<String> plus(Option<?> option) {
    Set<String> g = new HashSet<>(given);
    g.add(option.name());
    return Set.copyOf(g);
  }

  /**
   * Values of {@code options} as their command-line text, in the list's order (for the {@code job_runs}
   * table and properties files).
   */
  public Map<String, String> texts(List<? extends Option<?>> options) {
    Map<String, String> out = new LinkedHashMap<>();
    for (Option<?> o : options) {
      out.put(o.name(), text(o));
    }
    return Collections.unmodifiableMap(out);
  }

  /** The value of {@code option} as command-line text ({@code auto} for an auto value; null for no value). */
  public <T> String text(Option<T> option) {
    return option.format(get(option));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof OptionValues other && values.equals(other.values);
  }

  @Override
  public int hashCode() {
    return values.hashCode();
  }

  @Override
  public String toString() {
    return new java.util.TreeMap<>(values).toString();
  }
}
