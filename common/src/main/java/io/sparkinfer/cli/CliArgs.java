package io.sparkinfer.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Parsed {@code --name value} / {@code --name=value} / {@code --flag} (or {@code --flag=true|false})
 * arguments against a table of {@link CliOption}s: the one command-line parser of the project's tools.
 * Unknown options, missing values and repeated single options are {@link IllegalArgumentException}s naming
 * the option.
 */
public final class CliArgs {

  private final Map<String, List<String>> values;

  private CliArgs(Map<String, List<String>> values) {
    this.values = values;
  }

  public static CliArgs parse(List<CliOption> options, String... args) {
    Map<String, CliOption> byName = new LinkedHashMap<>();
    options.forEach(o -> byName.put(o.name(), o));
    Map<String, List<String>> values = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (!arg.startsWith("--") || arg.length() == 2) {
        throw new IllegalArgumentException("unexpected argument '" + arg + "' (options start with --; see --help)");
      }
      String name = arg.substring(2);
      String inline = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        inline = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      CliOption option = byName.get(name);
      if (option == null) {
        throw new IllegalArgumentException("unknown option --" + name + " (see --help)");
      }
      String value;
      if (option.isFlag()) {
        if (inline != null && !inline.equals("true") && !inline.equals("false")) {
          throw new IllegalArgumentException("--" + name + " is a flag: give it alone, or its value as true or false, got '"
              + inline + "'");
        }
        value = inline == null ? "true" : inline;
      } else if (inline != null) {
        value = inline;
      } else if (i + 1 < args.length) {
        value = args[++i];
      } else {
        throw new IllegalArgumentException("--" + name + " needs a value (" + option.valueName() + ")");
      }
      List<String> list = values.computeIfAbsent(name, k -> new ArrayList<>());
      if (!list.isEmpty() && !option.repeatable()) {
        throw new IllegalArgumentException("--" + name + " given more than once");
      }
      list.add(value);
    }
    return new CliArgs(values);
  }

  /** Whether the option was given (a flag given as {@code =false} counts as given). */
  public boolean has(String name) {
    return values.containsKey(name);
  }

  /** A flag's value: given alone or {@code =true}. */
  public boolean flag(String name) {
    return get(name, "false").equals("true");
  }

  /** A flag's value, or {@code fallback} when it is not given (flags on by default: {@code --name=false}). */
  public boolean flag(String name, boolean fallback) {
    return has(name) ? flag(name) : fallback;
  }

  public String get(String name, String fallback) {
    List<String> v = values.get(name);
    return v == null ? fallback : v.get(0);
  }

  public List<String> all(String name) {
    return values.getOrDefault(name, List.of());
  }

  public int getInt(String name, int fallback) {
    return get(name, fallback, Integer::parseInt, "an integer");
  }

  public long getLong(String name, long fallback) {
    return get(name, fallback, Long::parseLong, "an integer");
  }

  public double getDouble(String name, double fallback) {
    return get(name, fallback, Double::parseDouble, "a number");
  }

  private <T> T get(String name, T fallback, java.util.function.Function<String, T> parser, String kind) {
    String v = get(name, null);
    if (v == null) {
      return fallback;
    }
    try {
      return parser.apply(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--" + name + " must be " + kind + ", got '" + v + "'");
    }
  }

  /** The usage text: a synopsis line, then one aligned line per option with its default. */
  public static String usage(String synopsis, String description, List<CliOption> options) {
    StringBuilder sb = new StringBuilder();
    sb.append("usage: ").append(synopsis).append("\n\n").append(description).append("\n\noptions:\n");
    List<String> heads = new ArrayList<>();
    int width = 0;
    for (CliOption o : options) {
      String head = "  --" + o.name() + (o.isFlag() ? "" : " " + o.valueName());
      heads.add(head);
      width = Math.max(width, head.length());
    }
    for (int i = 0; i < options.size(); i++) {
      CliOption o = options.get(i);
      sb.append(String.format(Locale.ROOT, "%-" + (width + 2) + "s%s", heads.get(i), o.description()));
      if (o.defaultText() != null) {
        sb.append(" (default: ").append(o.defaultText()).append(")");
      }
      if (o.repeatable()) {
        sb.append(" (repeatable)");
      }
      sb.append('\n');
    }
    return sb.toString();
  }
}
