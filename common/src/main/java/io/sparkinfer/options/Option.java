package io.sparkinfer.options;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * One option, declared once: its name, the syntax of its value, its type (a parser and a formatter), its
 * typed default, its validation and its help line. The same declaration is the command-line option
 * {@code --name}, the Spark conf key {@code spark.sparkinfer.name} and the environment variable
 * {@code SPARKINFER_NAME} ({@link OptionTable#resolve} reads them in that order), the line of the usage text
 * and the row of README's option table.
 *
 * <p>Values are immutable: Integer, Long, Double, Boolean, String, an enum, or a list of strings
 * ({@link #repeated}). Options whose value may be {@code auto} hold a stated value for it (0 for numbers,
 * null for a choice); their help says what {@code auto} resolves to.
 *
 * @param <T> the value's type
 */
public final class Option<T> {

  /** How the value is given on a command line. */
  public enum Kind {
    /** {@code --name value} or {@code --name=value}. */
    VALUE,
    /** {@code --name} alone (true) or {@code --name=true|false}. */
    FLAG,
    /** {@code --name value}, several times: a list. */
    REPEATED
  }

  private final String name;
  private final String syntax;
  private final Kind kind;
  private final Function<String, T> parser;
  private final Function<T, String> formatter;
  private final T defaultValue;
  private final String defaultText;
  private final String help;
  private final boolean diagnostic;

  private Option(String name, String syntax, Kind kind, Function<String, T> parser, Function<T, String> formatter,
      T defaultValue, String defaultText, String help, boolean diagnostic) {
    if (!name.matches("[a-z][a-z0-9-]*")) {
      throw new IllegalArgumentException("option names are lower-case words joined by '-', got '" + name + "'");
    }
    this.name = name;
    this.syntax = syntax;
    this.kind = kind;
    this.parser = parser;
    this.formatter = formatter;
    this.defaultValue = defaultValue;
    this.defaultText = defaultText;
    this.help = Objects.requireNonNull(help, "help");
    this.diagnostic = diagnostic;
  }

  // ---- factories --------------------------------------------------------------------------------------------

  /** An integer option. */
  public static Option<Integer> integer(String name, String syntax, int defaultValue, String help) {
    return new Option<>(name, syntax, Kind.VALUE, Option::parseInt, String::valueOf, defaultValue, null, help, false);
  }

  /**
   * An integer of at least {@code min} that also takes {@code auto} (or 0), held as 0 and the default;
   * {@code help} says what auto resolves to.
   */
  public static Option<Integer> integerOrAuto(String name, String syntax, int min, String help) {
    Function<String, Integer> parser = text -> {
      String s = text.trim();
      int v = s.equalsIgnoreCase("auto") ? 0 : parseInt(s);
      if (v != 0 && v < min) {
        throw new IllegalArgumentException("must be >= " + min + " or auto");
      }
      return v;
    };
    return new Option<>(name, syntax, Kind.VALUE, parser, v -> v == 0 ? "auto" : String.valueOf(v), 0, null, help,
        false);
  }

  /** A long integer option. */
  public static Option<Long> longInteger(String name, String syntax, long defaultValue, String help) {
    return new Option<>(name, syntax, Kind.VALUE, Option::parseLong, String::valueOf, defaultValue, null, help, false);
  }

  /** A number. */
  public static Option<Double> number(String name, String syntax, double defaultValue, String help) {
    return new Option<>(name, syntax, Kind.VALUE, Option::parseDouble, Option::formatDouble, defaultValue, null, help,
        false);
  }

  /** A flag: {@code --name} alone turns it on, {@code --name=false} off. */
  public static Option<Boolean> flag(String name, boolean defaultValue, String help) {
    return new Option<>(name, null, Kind.FLAG, Option::parseBoolean, String::valueOf, defaultValue, null, help, false);
  }

  /** A string, taken as given (not trimmed); {@code defaultValue} may be null (no default). */
  public static Option<String> text(String name, String syntax, String defaultValue, String help) {
    return new Option<>(name, syntax, Kind.VALUE, s -> s, s -> s, defaultValue, null, help, false);
  }

  /** A string given any number of times; the default is the empty list. */
  public static Option<List<String>> repeated(String name, String syntax, String help) {
    return new Option<>(name, syntax, Kind.REPEATED, List::of, v -> String.join(",", v), List.of(), null, help, false);
  }

  /**
   * One of {@code choices}, named on the command line by {@code label} (any case). With {@code auto} true the
   * option also takes {@code auto}, held as null.
   */
  @SafeVarargs
  public static <E> Option<E> choice(String name, E defaultValue, boolean auto, Function<E, String> label, String help,
      E... choices) {
    List<String> labels = Arrays.stream(choices).map(label).collect(Collectors.toList());
    if (auto) {
      labels.add(0, "auto");
    }
    String syntax = String.join("|", labels);
    Function<String, E> parser = text -> {
      String s = text.trim();
      if (auto && s.equalsIgnoreCase("auto")) {
        return null;
      }
      for (E c : choices) {
        if (label.apply(c).equalsIgnoreCase(s)) {
          return c;
        }
      }
      throw new IllegalArgumentException("must be one of " + String.join(", ", labels));
    };
    return new Option<>(name, syntax, Kind.VALUE, parser, v -> v == null ? "auto" : label.apply(v), defaultValue, null,
        help, false);
  }

  /**
   * An option of any immutable, serializable type, read by {@code parser} (which throws
   * {@link IllegalArgumentException} with a "must be ..." reason) and written back by {@code formatter}.
   */
  public static <T> Option<T> custom(String name, String syntax, T defaultValue, Function<String, T> parser,
      Function<T, String> formatter, String help) {
    return new Option<>(name, syntax, Kind.VALUE, parser, formatter, defaultValue, null, help, false);
  }

  // ---- refinements (each returns a new option) --------------------------------------------------------------

  /** Values must satisfy {@code test}; otherwise "--name must be {@code requirement}, got 'value'". */
  public Option<T> validate(Predicate<T> test, String requirement) {
    Function<String, T> inner = parser;
    Function<String, T> checked = s -> {
      T v = inner.apply(s);
      if (!test.test(v)) {
        throw new IllegalArgumentException("must be " + requirement);
      }
      return v;
    };
    return new Option<>(name, syntax, kind, checked, formatter, defaultValue, defaultText, help, diagnostic);
  }

  /** Numbers at least {@code min}. */
  public Option<T> atLeast(long min) {
    return validate(v -> ((Number) v).doubleValue() >= min, ">= " + min);
  }

  /** Numbers in [{@code min}, {@code max}]. */
  public Option<T> between(double min, double max) {
    return validate(v -> ((Number) v).doubleValue() >= min && ((Number) v).doubleValue() <= max,
        "in [" + formatDouble(min) + ", " + formatDouble(max) + "]");
  }

  /** Strings that match {@code regex} (whole), described as {@code requirement}. */
  public Option<T> matching(String regex, String requirement) {
    return validate(v -> v == null || v.toString().matches(regex), requirement);
  }

  /** Values are mapped by {@code f} after parsing (e.g. lower-cased). */
  public Option<T> normalized(Function<T, T> f) {
    Function<String, T> inner = parser;
    return new Option<>(name, syntax, kind, s -> f.apply(inner.apply(s)), formatter, defaultValue, defaultText, help,
        diagnostic);
  }

  /** How the usage text shows the default, when the value alone would not say it (e.g. "the demo model"). */
  public Option<T> describedDefault(String text) {
    return new Option<>(name, syntax, kind, parser, formatter, defaultValue, text, help, diagnostic);
  }

  /** Marks a developer's diagnostic: listed apart in the usage text, never needed to run a job. */
  public Option<T> diagnostic() {
    return new Option<>(name, syntax, kind, parser, formatter, defaultValue, defaultText, help, true);
  }

  // ---- use --------------------------------------------------------------------------------------------------

  /**
   * The value {@code text} stands for, validated.
   *
   * @throws IllegalArgumentException naming the option, the requirement and the text
   */
  public T parse(String text) {
    return parse(text, null);
  }

  /** As {@link #parse(String)}, naming where the text came from (a Spark conf key, a variable) on error. */
  T parse(String text, String source) {
    try {
      return parser.apply(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--" + name + (source == null ? "" : " (from " + source + ")") + " "
          + e.getMessage() + ", got '" + text + "'", e);
    }
  }

  /**
   * The value as it would be written on a command line: {@code auto} for the auto value, null for a null
   * value of an option without one (a path with no default).
   */
  public String format(T value) {
    if (value == null) {
      return syntax != null && syntax.startsWith("auto|") ? "auto" : null;
    }
    return formatter.apply(value);
  }

  /** The default as the usage text shows it, or null when there is none. */
  public String defaultText() {
    if (defaultText != null) {
      return defaultText;
    }
    if (kind == Kind.REPEATED && ((List<?>) defaultValue).isEmpty()) {
      return null;
    }
    return format(defaultValue);
  }

  public String name() {
    return name;
  }

  /** The value's syntax for the usage text, e.g. {@code N|auto}; null for a flag. */
  public String syntax() {
    return syntax;
  }

  public Kind kind() {
    return kind;
  }

  public boolean isFlag() {
    return kind == Kind.FLAG;
  }

  public T defaultValue() {
    return defaultValue;
  }

  public String help() {
    return help;
  }

  public boolean isDiagnostic() {
    return diagnostic;
  }

  /** The Spark conf key that gives this option a value: {@code spark.sparkinfer.<name>}. */
  public String confKey() {
    return OptionTable.CONF_PREFIX + name;
  }

  /** The environment variable that gives this option a value: {@code SPARKINFER_<NAME>}. */
  public String environmentVariable() {
    return OptionTable.ENV_PREFIX + name.toUpperCase(Locale.ROOT).replace('-', '_');
  }

  @Override
  public String toString() {
    return "--" + name;
  }

  private static int parseInt(String s) {
    try {
      return Integer.parseInt(s.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("must be an integer");
    }
  }

  private static long parseLong(String s) {
    try {
      return Long.parseLong(s.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("must be an integer");
    }
  }

  private static double parseDouble(String s) {
    try {
      double d = Double.parseDouble(s.trim());
      if (!Double.isFinite(d)) {
        throw new IllegalArgumentException("must be a finite number");
      }
      return d;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("must be a number");
    }
  }

  private static boolean parseBoolean(String s) {
    return switch (s.trim().toLowerCase(Locale.ROOT)) {
      case "true", "yes", "1" -> true;
      case "false", "no", "0" -> false;
      default -> throw new IllegalArgumentException("must be true or false");
    };
  }

  /** 1.0 as {@code 1.0}, 0.5 as {@code 0.5}, without exponent noise. */
  static String formatDouble(double d) {
    return d == Math.rint(d) && Math.abs(d) < 1e15 ? String.valueOf((long) d) + ".0" : String.valueOf(d);
  }

  /** The names of {@code options}, for messages. */
  static String names(List<? extends Option<?>> options) {
    List<String> out = new ArrayList<>();
    options.forEach(o -> out.add(o.toString()));
    return String.join(", ", out);
  }
}
