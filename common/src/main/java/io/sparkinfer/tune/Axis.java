package io.sparkinfer.tune;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One axis of a search space: an option's name (an engine option such as {@code batch-size}, or a workload
 * axis such as {@code prompt-len}) and the values a trial may give it, as command-line text.
 *
 * <p>Two kinds: a list of values ({@code 1,4,16}, {@code fp16,bf16}), or an integer range
 * ({@code 1..1024}) on a linear or a log scale ({@code 1..1024:log}). Samplers see every axis as the unit
 * interval: {@link #at(double)} maps a point of [0, 1) to a value (a list by index, a linear range
 * uniformly, a log range log-uniformly, each rounded to an integer), and {@link #grid()} enumerates the
 * values a grid takes (a list as given; a linear range every integer; a log range the powers of two inside it
 * and its ends).
 *
 * @param name the option the axis sets
 * @param values the values of a list axis; empty for a range
 * @param lo the range's lower end (a range only)
 * @param hi the range's upper end (a range only)
 * @param scale how a range maps the unit interval
 */
public record Axis(String name, List<String> values, long lo, long hi, Scale scale) {

  /** How a range maps the unit interval. */
  public enum Scale {
    LINEAR, LOG
  }

  /** The most values a linear range may enumerate for a grid. */
  static final int MAX_GRID = 4096;

  public Axis {
    if (name == null || !name.matches("[a-z][a-z0-9-]*")) {
      throw new IllegalArgumentException("an axis is named for an option (lower-case words joined by '-'), got '"
          + name + "'");
    }
    values = values == null ? List.of() : List.copyOf(values);
    if (values.isEmpty()) {
      if (lo > hi) {
        throw new IllegalArgumentException("axis " + name + ": range " + lo + ".." + hi + " is empty");
      }
      if (scale == Scale.LOG && lo <= 0) {
        throw new IllegalArgumentException("axis " + name + ": a log range needs a positive lower end, got " + lo);
      }
    } else if (values.stream().distinct().count() != values.size()) {
      throw new IllegalArgumentException("axis " + name + " repeats a value: " + values);
    }
  }

  /** A list axis. */
  public static Axis of(String name, List<String> values) {
    if (values.isEmpty()) {
      throw new IllegalArgumentException("axis " + name + " has no values");
    }
    return new Axis(name, values, 0, 0, Scale.LINEAR);
  }

  /** An integer range on {@code scale}. */
  public static Axis range(String name, long lo, long hi, Scale scale) {
    return new Axis(name, List.of(), lo, hi, scale);
  }

  /**
   * Parses {@code a,b,c} (a list), {@code LO..HI} (a linear integer range) or {@code LO..HI:log} (a log range).
   *
   * @throws IllegalArgumentException naming the axis and the text
   */
  public static Axis parse(String name, String spec) {
    String s = spec.trim();
    int dots = s.indexOf("..");
    if (dots > 0 && !s.contains(",")) {
      String[] parts = s.split(":", 2);
      String[] ends = parts[0].split("\\.\\.", 2);
      Scale scale = Scale.LINEAR;
      if (parts.length == 2) {
        switch (parts[1].trim().toLowerCase(Locale.ROOT)) {
          case "log", "log2" -> scale = Scale.LOG;
          case "linear" -> scale = Scale.LINEAR;
          default -> throw new IllegalArgumentException("axis " + name + ": scale '" + parts[1]
              + "' is not linear or log, in '" + spec + "'");
        }
      }
      try {
        return range(name, Long.parseLong(ends[0].trim()), Long.parseLong(ends[1].trim()), scale);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("axis " + name + ": '" + spec + "' is not LO..HI with integer ends", e);
      }
    }
    List<String> values = new ArrayList<>();
    for (String v : s.split(",")) {
      if (!v.isBlank()) {
        values.add(v.trim());
      }
    }
    return of(name, values);
  }

  public boolean isRange() {
    return values.isEmpty();
  }

  /** Whether every value is a number (a range, or a list of numbers): then the axis has an order. */
  public boolean isNumeric() {
    if (isRange()) {
      return true;
    }
    for (String v : values) {
      try {
        Double.parseDouble(v);
      } catch (NumberFormatException e) {
        return false;
      }
    }
    return true;
  }

  /** The values a grid takes, in order. */
  public List<String> grid() {
    if (!isRange()) {
      return values;
    }
    List<String> out = new ArrayList<>();
    if (scale == Scale.LINEAR) {
      if (hi - lo + 1 > MAX_GRID) {
        throw new IllegalArgumentException("axis " + name + ": " + lo + ".." + hi + " has more than " + MAX_GRID
            + " values for a grid; use a log range, a list, or another sampler");
      }
      for (long v = lo; v <= hi; v++) {
        out.add(Long.toString(v));
      }
      return out;
    }
    out.add(Long.toString(lo));
    for (long p = Long.highestOneBit(lo) << 1; p > 0 && p < hi; p <<= 1) {
      out.add(Long.toString(p));
    }
    if (hi != lo) {
      out.add(Long.toString(hi));
    }
    return out;
  }

  /**
   * The value at {@code u} in [0, 1]: a list by index ({@code floor(u * n)}), a linear range uniformly, a log
   * range log-uniformly, rounded to the nearest integer.
   */
  public String at(double u) {
    double t = Math.min(Math.max(u, 0), 1);
    if (!isRange()) {
      return values.get((int) Math.min(values.size() - 1, Math.floor(t * values.size())));
    }
    double v = scale == Scale.LINEAR ? lo + t * (hi - lo)
        : Math.exp(Math.log(lo) + t * (Math.log(hi) - Math.log(lo)));
    return Long.toString(Math.min(hi, Math.max(lo, Math.round(v))));
  }

  /** How the axis reads back in a space file or a log line. */
  public String spec() {
    return isRange() ? lo + ".." + hi + (scale == Scale.LOG ? ":log" : "") : String.join(",", values);
  }
}
