package io.sparkinfer.options;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The options of one tool, in titled groups (e.g. the job's own, the generation defaults, the engine's):
 * what the tool parses, what its {@code --help} prints and what README's option table shows.
 *
 * <p>One precedence chain for every option of every tool ({@link #resolve}): the command line, else the
 * Spark conf key {@code spark.sparkinfer.<name>} (in properties files or {@code --conf}), else the environment
 * variable {@code SPARKINFER_<NAME>} ({@code -} as {@code _}), else the declared default.
 */
public final class OptionTable {

  public static final String CONF_PREFIX = "spark.sparkinfer.";
  public static final String ENV_PREFIX = "SPARKINFER_";

  /** A titled group of options. */
  public record Group(String title, List<Option<?>> options) {
    public Group {
      options = List.copyOf(options);
    }

    /** The group as a Markdown table: {@code | option | default | meaning |}, a row per option. */
    public String markdown() {
      StringBuilder sb = new StringBuilder("| option | default | meaning |\n| --- | --- | --- |\n");
      for (Option<?> o : options) {
        String d = o.defaultText();
        sb.append("| `").append(escape("--" + o.name() + (o.isFlag() ? "" : " " + o.syntax()))).append("` | ")
            .append(d == null ? "" : escape(d)).append(" | ")
            .append(o.isDiagnostic() ? "diagnostic: " : "").append(escape(o.help()))
            .append(o.kind() == Option.Kind.REPEATED ? " (repeatable)" : "").append(" |\n");
      }
      return sb.toString();
    }
  }

  private final List<Group> groups;
  private final Map<String, Option<?>> byName = new LinkedHashMap<>();

  public OptionTable(List<Group> groups) {
    this.groups = List.copyOf(groups);
    for (Group g : groups) {
      for (Option<?> o : g.options()) {
        if (byName.put(o.name(), o) != null) {
          throw new IllegalArgumentException("option --" + o.name() + " is declared twice");
        }
      }
    }
  }

  public OptionTable(Group... groups) {
    this(List.of(groups));
  }

  public List<Group> groups() {
    return groups;
  }

  /** Every option, in the order of the usage text. */
  public List<Option<?>> options() {
    return List.copyOf(byName.values());
  }

  /** The option called {@code name} (without dashes), or null. */
  public Option<?> option(String name) {
    return byName.get(name);
  }

  /** Parses a command line against this table (see {@link CliArgs}). */
  public CliArgs parse(String... args) {
    return CliArgs.parse(options(), args);
  }

  /**
   * Every option's value: from the command line, else {@code conf} (Spark conf lookups by key, null when
   * absent), else {@code environment} (null when absent), else the default.
   *
   * @throws IllegalArgumentException naming the option, where its bad value came from, and why it is bad
   */
  public OptionValues resolve(CliArgs args, Function<String, String> conf, Function<String, String> environment) {
    Map<String, Object> values = new HashMap<>();
    Set<String> given = new HashSet<>();
    for (Option<?> o : byName.values()) {
      values.put(o.name(), value(o, args, conf, environment));
      if (args.has(o.name()) || conf.apply(o.confKey()) != null || environment.apply(o.environmentVariable()) != null) {
        given.add(o.name());
      }
    }
    return OptionValues.of(values, given);
  }

  /** {@link #resolve} with the process environment. */
  public OptionValues resolve(CliArgs args, Function<String, String> conf) {
    return resolve(args, conf, System::getenv);
  }

  private static Object value(Option<?> o, CliArgs args, Function<String, String> conf,
      Function<String, String> environment) {
    if (args.has(o.name())) {
      List<String> given = args.all(o.name());
      if (o.kind() == Option.Kind.REPEATED) {
        List<Object> all = new ArrayList<>();
        given.forEach(g -> all.addAll((List<?>) o.parse(g))); // each occurrence is one element
        return List.copyOf(all);
      }
      return o.parse(given.get(0));
    }
    String fromConf = conf.apply(o.confKey());
    if (fromConf != null) {
      return o.parse(fromConf, o.confKey());
    }
    String fromEnv = environment.apply(o.environmentVariable());
    if (fromEnv != null) {
      return o.parse(fromEnv, "$" + o.environmentVariable());
    }
    return o.defaultValue();
  }

  /** The usage text: a synopsis, a description, then each group's options, one aligned line each. */
  public String usage(String synopsis, String description) {
    StringBuilder sb = new StringBuilder();
    sb.append("usage: ").append(synopsis).append("\n\n").append(description).append("\n\n");
    sb.append("Every option can also be set as Spark conf ").append(CONF_PREFIX).append("<name> or as the environment\n")
        .append("variable ").append(ENV_PREFIX).append("<NAME>; the command line wins, then the conf, then the environment.\n");
    int width = 0;
    for (Option<?> o : byName.values()) {
      width = Math.max(width, head(o).length());
    }
    for (Group g : groups) {
      List<Option<?>> plain = g.options().stream().filter(o -> !o.isDiagnostic()).toList();
      List<Option<?>> diagnostics = g.options().stream().filter(Option::isDiagnostic).toList();
      appendGroup(sb, g.title(), plain, width);
      appendGroup(sb, g.title() + ", developers' diagnostics", diagnostics, width);
    }
    return sb.toString();
  }

  private static void appendGroup(StringBuilder sb, String title, List<Option<?>> options, int width) {
    if (options.isEmpty()) {
      return;
    }
    sb.append('\n').append(title).append(":\n");
    for (Option<?> o : options) {
      sb.append(String.format(Locale.ROOT, "%-" + (width + 2) + "s%s", head(o), o.help()));
      String d = o.defaultText();
      if (d != null) {
        sb.append(" (default: ").append(d).append(')');
      }
      if (o.kind() == Option.Kind.REPEATED) {
        sb.append(" (repeatable)");
      }
      sb.append('\n');
    }
  }

  private static String head(Option<?> o) {
    return "  --" + o.name() + (o.isFlag() ? "" : " " + o.syntax());
  }

  /** Every group as a Markdown table under a bold line with its title. */
  public String markdown() {
    StringBuilder sb = new StringBuilder();
    for (Group g : groups) {
      if (sb.length() > 0) {
        sb.append('\n');
      }
      sb.append("**").append(g.title()).append("**\n\n").append(g.markdown());
    }
    return sb.toString();
  }

  private static String escape(String s) {
    return s.replace("|", "\\|");
  }
}
