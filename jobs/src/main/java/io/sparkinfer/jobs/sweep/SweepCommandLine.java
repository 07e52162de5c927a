package io.sparkinfer.jobs.sweep;

import io.sparkinfer.options.CliArgs;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import java.io.PrintStream;
import org.apache.spark.SparkConf;

/**
 * The command line of {@code sweep.sh}'s subcommands over a finished sweep_trials table ({@code report},
 * {@code compare}): their shared options, and parsing with {@code --help}, Spark conf defaults and a required
 * {@code --output}.
 */
final class SweepCommandLine {

  static final Option<String> OUTPUT = Option.text("output", "PATH", null, "the sweep_trials table")
      .describedDefault("required");
  static final Option<Boolean> HELP = Option.flag("help", false, "print this help and exit");

  /** The options, or the exit status when there is nothing to run (help printed, or bad options). */
  record Parsed(OptionValues options, int exitStatus) {
    boolean done() {
      return options == null;
    }
  }

  private SweepCommandLine() {}

  /**
   * Parses {@code args} over {@code table} (which holds {@link #OUTPUT} and {@link #HELP}); prints the usage for
   * {@code --help} (status 0) and the error for bad options ({@link SweepJob#EXIT_USAGE}).
   */
  static Parsed parse(OptionTable table, String[] args, String usage, String about, PrintStream out, PrintStream err) {
    try {
      CliArgs parsed = table.parse(args);
      if (parsed.flag(HELP)) {
        out.print(table.usage(usage, about));
        return new Parsed(null, 0);
      }
      SparkConf conf = new SparkConf();
      OptionValues o = table.resolve(parsed, key -> conf.contains(key) ? conf.get(key) : null);
      if (o.get(OUTPUT) == null) {
        throw new IllegalArgumentException("--output is required");
      }
      return new Parsed(o, 0);
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      return new Parsed(null, SweepJob.EXIT_USAGE);
    }
  }
}
