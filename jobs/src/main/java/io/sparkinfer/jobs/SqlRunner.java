package io.sparkinfer.jobs;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * {@code submit/sql.sh}: registers tables as views and runs Spark SQL, printing rows tab-separated under a
 * header line. Values print as text; null as {@code NULL}; arrays as {@code [a, b]}; tabs, newlines and
 * backslashes inside values as {@code \t}, {@code \n}, {@code \\}, so each row is one line.
 *
 * <pre>sql.sh [--view NAME=PATH]... [--file FILE.sql | "SQL"]...</pre>
 *
 * A view's format is taken from its files: Parquet, or JSON lines ({@code .json}/{@code .jsonl}), or CSV
 * with a header. A file holds statements ending with {@code ;} at the end of a line; each result is printed,
 * separated by a blank line.
 */
public final class SqlRunner {

  private SqlRunner() {}

  public static void main(String[] args) {
    int status;
    SparkSession spark = null;
    try {
      Request request = Request.parse(args);
      spark = SparkSession.builder().appName("sparkinfer sql").getOrCreate();
      status = run(spark, request, System.out);
    } catch (IllegalArgumentException e) {
      System.err.println("error: " + e.getMessage());
      status = 2;
    } finally {
      if (spark != null) {
        spark.stop();
      }
    }
    if (status != 0) {
      System.exit(status);
    }
  }

  /** The parsed command line: views (name to path) and statements, in order. */
  record Request(Map<String, String> views, List<String> statements) {
    static Request parse(String[] args) {
      Map<String, String> views = new LinkedHashMap<>();
      List<String> statements = new ArrayList<>();
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        if (a.equals("--view") || a.equals("--file")) {
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException(a + " needs a value");
          }
          String v = args[++i];
          if (a.equals("--view")) {
            int eq = v.indexOf('=');
            if (eq <= 0 || eq == v.length() - 1) {
              throw new IllegalArgumentException("--view takes NAME=PATH, got '" + v + "'");
            }
            views.put(v.substring(0, eq), v.substring(eq + 1));
          } else if (v.endsWith(".ipynb")) {
            Notebook.sqlCells(readFile(v)).forEach(c -> statements.add(c.sql()));
          } else {
            statements.addAll(splitStatements(readFile(v)));
          }
        } else if (a.startsWith("--")) {
          throw new IllegalArgumentException("unknown option " + a + " (usage: sql.sh [--view NAME=PATH]... "
              + "[--file FILE.sql|NOTEBOOK.ipynb | \"SQL\"]...)");
        } else {
          statements.add(a);
        }
      }
      if (statements.isEmpty()) {
        throw new IllegalArgumentException("no SQL given (usage: sql.sh [--view NAME=PATH]... \"SQL\")");
      }
      return new Request(views, statements);
    }
  }

  /** Registers the views and runs each statement, printing its rows. Returns the exit status. */
  static int run(SparkSession spark, Request request, PrintStream out) {
    for (Map.Entry<String, String> v : request.views().entrySet()) {
      register(spark, v.getKey(), v.getValue());
    }
    boolean first = true;
    for (String sql : request.statements()) {
      if (!first) {
        out.println();
      }
      first = false;
      Dataset<Row> result;
      try {
        result = spark.sql(sql);
      } catch (RuntimeException e) {
        throw new IllegalArgumentException("SQL failed: " + e.getMessage().lines().findFirst().orElse("") + "\n  in: "
            + sql.strip(), e);
      }
      print(result, out);
    }
    out.flush();
    return 0;
  }

  /**
   * Registers {@code path} as temporary view {@code name}, its format taken from its files; a result cache
   * ({@code --cache}) as its readers see it: committed entries, each key once ({@link ResultCache#read}).
   */
  public static void register(SparkSession spark, String name, String path) {
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    if (ResultCache.isCache(path, conf)) {
      ResultCache.read(spark, path).createOrReplaceTempView(name);
      return;
    }
    String format = formatOf(path, conf);
    String[] paths = {path};
    DataFrameReader reader = spark.read();
    if (new org.apache.hadoop.fs.Path(path).getName().startsWith("_")) {
      // Spark skips a directory named _x (e.g. _job_runs): name its files, or its partitions (date=...) under it
      paths = visibleFiles(path, conf);
      reader = reader.option("basePath", path);
    }
    Dataset<Row> df = switch (format) {
      case "json" -> reader.json(paths);
      case "csv" -> reader.option("header", "true").option("multiLine", "true").option("escape", "\"").csv(paths);
      // tables that runs of older versions appended to have fewer columns: merged, null in those rows
      default -> reader.option("mergeSchema", "true").parquet(paths);
    };
    df.createOrReplaceTempView(name);
  }

  private static String[] visibleFiles(String dir, Configuration conf) {
    org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(dir);
    try {
      FileSystem fs = p.getFileSystem(conf);
      if (!fs.getFileStatus(p).isDirectory()) {
        return new String[] {dir};
      }
      List<String> files = new ArrayList<>();
      for (FileStatus f : fs.listStatus(p)) {
        String n = f.getPath().getName();
        if (!n.startsWith("_") && !n.startsWith(".") && (f.isFile() || n.contains("="))) {
          files.add(f.getPath().toString()); // a data file, or a partition directory such as date=2026-12-01
        }
      }
      if (files.isEmpty()) {
        throw new IllegalArgumentException("--view path " + dir + " has no data files");
      }
      return files.toArray(new String[0]);
    } catch (IOException e) {
      throw new IllegalArgumentException("--view path " + dir + ": " + e.getMessage(), e);
    }
  }

  static String formatOf(String path, Configuration conf) {
    org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(path);
    try {
      FileSystem fs = p.getFileSystem(conf);
      if (!fs.exists(p)) {
        throw new IllegalArgumentException("--view path " + path + " does not exist");
      }
      FileStatus[] files = fs.getFileStatus(p).isDirectory() ? fs.listStatus(p) : new FileStatus[] {fs.getFileStatus(p)};
      for (FileStatus f : files) {
        String n = f.getPath().getName().toLowerCase(Locale.ROOT);
        if (!f.isFile() || n.startsWith("_") || n.startsWith(".")) {
          continue;
        }
        if (n.endsWith(".json") || n.endsWith(".jsonl") || n.endsWith(".json.gz")) {
          return "json";
        }
        if (n.endsWith(".csv")) {
          return "csv";
        }
        if (n.endsWith(".parquet")) {
          return "parquet";
        }
      }
      return "parquet";
    } catch (IOException e) {
      throw new IllegalArgumentException("--view path " + path + ": " + e.getMessage(), e);
    }
  }

  static void print(Dataset<Row> result, PrintStream out) {
    out.println(String.join("\t", result.columns()));
    for (Row r : result.collectAsList()) {
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < r.length(); i++) {
        if (i > 0) {
          sb.append('\t');
        }
        sb.append(format(r.get(i)));
      }
      out.println(sb);
    }
  }

  /** One value as a single-line string. */
  static String format(Object v) {
    if (v == null) {
      return "NULL";
    }
    if (v instanceof scala.collection.Map<?, ?> m) {
      List<String> parts = new ArrayList<>();
      m.foreach(t -> parts.add(format(t._1()) + ": " + format(t._2())));
      return "{" + String.join(", ", parts) + "}";
    }
    if (v instanceof scala.collection.Iterable<?> it) {
      List<String> parts = new ArrayList<>();
      it.foreach(x -> parts.add(format(x)));
      return "[" + String.join(", ", parts) + "]";
    }
    if (v instanceof Double d) {
      return d == Math.rint(d) && Math.abs(d) < 1e15 ? String.format(Locale.ROOT, "%.1f", d) : Double.toString(d);
    }
    return v.toString().replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r");
  }

  /** Statements of a .sql file: split after each line ending with ';'; lines starting with '--' dropped. */
  static List<String> splitStatements(String text) {
    List<String> out = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    for (String line : text.split("\n", -1)) {
      if (line.strip().startsWith("--")) {
        continue;
      }
      current.append(line).append('\n');
      if (line.strip().endsWith(";")) {
        String s = current.toString().strip();
        out.add(s.substring(0, s.length() - 1));
        current.setLength(0);
      }
    }
    if (!current.toString().isBlank()) {
      out.add(current.toString().strip());
    }
    return out;
  }

  private static String readFile(String file) {
    try {
      return Files.readString(Path.of(file), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalArgumentException("--file " + file + ": cannot read it: " + e.getMessage(), e);
    }
  }
}
