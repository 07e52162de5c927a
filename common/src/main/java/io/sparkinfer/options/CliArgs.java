package io.sparkinfer.options;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A command line split into option texts against a list of {@link Option}s: {@code --name value},
 * {@code --name=value}, {@code --flag} (or {@code --flag=true|false}): the one command-line parser of the
 * project's tools. Unknown options, missing values and single options given twice are
 * {@link IllegalArgumentException}s naming the option. Values are checked when they are resolved
 * ({@link OptionTable#resolve}).
 */
public final class CliArgs {

  private final Map<String, List<String>> values;

  private CliArgs(Map<String, List<String>> values) {
    this.values = values;
  }

  /** No arguments. */
  public static CliArgs none() {
    return new CliArgs(Map.of());
  }

  public static CliArgs parse(List<Option<?>> options, String... args) {
    Map<String, Option<?>> byName = new LinkedHashMap<>();
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
      Option<?> option = byName.get(name);
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
        throw new IllegalArgumentException("--" + name + " needs a value (" + option.syntax() + ")");
      }
      List<String> list = values.computeIfAbsent(name, k -> new ArrayList<>());
      if (!list.isEmpty() && option.kind() != Option.Kind.REPEATED) {
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

  /** Whether the flag was given alone or as {@code =true} (for {@code --help}, read before anything else). */
  public boolean flag(Option<Boolean> flag) {
    return has(flag.name()) && values.get(flag.name()).get(0).equals("true");
  }

  /** The texts given for {@code name}, in order. */
  public List<String> all(String name) {
    return values.getOrDefault(name, List.of());
  }
}
