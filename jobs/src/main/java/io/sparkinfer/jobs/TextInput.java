package io.sparkinfer.jobs;

import java.io.IOException;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.TreeSet;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.InputSplit;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.lib.input.FileInputFormat;
import org.apache.hadoop.mapreduce.lib.input.FileSplit;
import org.apache.hadoop.mapreduce.lib.input.TextInputFormat;
import org.apache.spark.api.java.JavaNewHadoopRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import scala.Tuple2;

/**
 * A JSONL or CSV input read as numbered lines, so that every row knows its file and line, and a row that cannot be
 * read becomes an error row instead of failing the job ({@link JsonlInput}, {@link CsvInput}).
 *
 * <p>Lines come from Hadoop's {@link TextInputFormat} (compressed files too), split as it splits files (JSONL) or
 * one task per file (CSV, whose quoted fields may span lines). Two passes over the splits: the first counts each
 * split's lines and records and notes the columns it names; the driver adds those up, per file and in (path,
 * offset) order, into each split's first line number and first record position; the second reads the rows with
 * them. Both passes see the same splits (one RDD), so the numbers are stable: the same file gives the same
 * line numbers and positions in every run. Only one small summary per split reaches the driver.
 */
final class TextInput {

  private TextInput() {}

  /** A line of a split: its 1-based number in its file, its text, whether its bytes were valid UTF-8. */
  record Line(long number, String text, boolean validUtf8) {}

  /** How a text format turns a split's lines into rows. */
  interface Format extends Serializable {

    /** The format's name in messages (JSONL, CSV). */
    String label();

    /** Whether a file may be read in several splits (each record on one line). */
    boolean splittable();

    /** Whether every file names its columns (a CSV header) and must name the prompt column. */
    boolean columnsPerFile();

    /** Pass 1: what a split holds, its lines numbered from 1. */
    SplitSummary summarize(Iterator<Line> lines);

    /** Pass 2: the split's rows ({@link Tables#INPUT}), its lines numbered in their file. */
    Iterator<Row> rows(Iterator<Line> lines, SplitPlace place);
  }

  /**
   * What pass 1 found in a split.
   *
   * @param lines lines in the split, blank ones included
   * @param records rows it holds (JSONL: lines that are not blank; CSV: records after the header)
   * @param readable records that could be read (a JSON object; a well-quoted CSV record)
   * @param columns the columns it names (JSONL: the keys of its objects, the first {@link #MAX_COLUMNS};
   *     CSV: the header's), or null when it names none
   * @param problem why the first unreadable record (or a CSV header) could not be read, or null
   * @param problemLine the line of {@code problem}, from 1 in the split
   */
  record SplitSummary(long lines, long records, long readable, List<String> columns, String problem,
      long problemLine) implements Serializable {
    static final int MAX_COLUMNS = 100;
  }

  /**
   * Where pass 2 stands in a split.
   *
   * @param file the file's path under --input (its name when --input is a file or a glob)
   * @param firstRecord position in the input of the split's first record (files in path order)
   * @param hasIdColumn whether the input has the id column: otherwise each row's id is row-POSITION
   */
  record SplitPlace(String file, long firstRecord, boolean hasIdColumn) implements Serializable {}

  /** What the driver keeps of one split between the passes. */
  private record Counted(String path, long start, SplitSummary summary) implements Serializable {}

  /** {@link TextInputFormat} that keeps each file whole: CSV records may span lines. */
  public static final class WholeFiles extends TextInputFormat {
    @Override
    protected boolean isSplitable(JobContext context, Path file) {
      return false;
    }
  }

  /**
   * The rows of {@code input} ({@link Tables#INPUT}).
   *
   * @throws IllegalArgumentException when the input holds no rows, none that can be read, or lacks the prompt
   *     column (in some file, for CSV)
   */
  static Dataset<Row> read(SparkSession spark, String input, Format format, String idColumn, String promptColumn,
      Configuration hadoopConf) {
    Configuration conf = new Configuration(hadoopConf);
    conf.setBoolean(FileInputFormat.INPUT_DIR_RECURSIVE, true); // nested directories, as Spark's readers read them
    if (format.splittable() && conf.get(FileInputFormat.SPLIT_MAXSIZE) == null) {
      long bytes = inputBytes(input, conf);
      if (bytes > 0) {
        conf.setLong(FileInputFormat.SPLIT_MAXSIZE, splitBytes(bytes, spark.sparkContext().defaultParallelism()));
      }
    }
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Class<TextInputFormat> lineFormat = format.splittable() ? TextInputFormat.class : wholeFiles();
    JavaNewHadoopRDD<LongWritable, Text> splits = (JavaNewHadoopRDD<LongWritable, Text>) jsc.newAPIHadoopFile(input,
        lineFormat, LongWritable.class, Text.class, conf);
    FileLabels labels = FileLabels.of(input, conf);
    Numbering numbering = Numbering.of(count(spark, input, splits, format), labels);
    boolean hasIdColumn = numbering.check(input, format, idColumn, promptColumn);

    // one entry per split: broadcast, not sent with every task
    Broadcast<Map<String, long[]>> firsts = jsc.broadcast(numbering.firstLineAndRecord());
    JavaRDD<Row> rows = splits.mapPartitionsWithInputSplit((split, lines) -> {
      FileSplit fs = (FileSplit) split;
      long[] first = firsts.value().get(key(fs.getPath().toString(), fs.getStart()));
      if (first == null) {
        throw new IllegalStateException("--input changed while the job read it: " + fs.getPath() + " at offset "
            + fs.getStart() + " was not there when its lines were counted");
      }
      return format.rows(new Lines(lines, first[0]),
          new SplitPlace(labels.label(fs.getPath().toString()), first[1], hasIdColumn));
    }, false);
    return spark.createDataFrame(rows, Tables.INPUT);
  }

  /** Splits are at least this large: smaller ones would cost more in tasks than their parallel reading saves. */
  static final long MIN_SPLIT_BYTES = 1L << 20;

  /**
   * The most bytes a split of a line-per-record input holds: an equal share of the input per core, at least
   * {@link #MIN_SPLIT_BYTES}. Hadoop splits at its block size (32 MB on a local disk, 128 MB on HDFS), so a
   * smaller input was one task: read, parsed and tokenized on one core while the others waited (the 8,192-prompt
   * benchmark's 19 MB file on a 16-core machine). A split size set in the Hadoop configuration is kept.
   */
  static long splitBytes(long inputBytes, int parallelism) {
    long share = (inputBytes + Math.max(parallelism, 1) - 1) / Math.max(parallelism, 1);
    return Math.max(MIN_SPLIT_BYTES, share);
  }

  /** The bytes under {@code input} (a file or a directory), or 0 when they cannot be summed (a glob, say). */
  private static long inputBytes(String input, Configuration conf) {
    try {
      Path path = new Path(input);
      return path.getFileSystem(conf).getContentSummary(path).getLength();
    } catch (IOException | IllegalArgumentException e) {
      return 0; // Hadoop's own splits; reading the input reports what is wrong with it
    }
  }

  /** Pass 1: each split's summary, in (path, offset) order. */
  private static List<Counted> count(SparkSession spark, String input, JavaNewHadoopRDD<LongWritable, Text> splits,
      Format format) {
    List<Counted> counted;
    spark.sparkContext().setJobDescription("sparkinfer: read " + input + " (count lines)");
    try {
      counted = new ArrayList<>(splits.mapPartitionsWithInputSplit((split, lines) -> {
        FileSplit fs = (FileSplit) split;
        SplitSummary s = format.summarize(new Lines(lines, 1));
        return List.of(new Counted(fs.getPath().toString(), fs.getStart(), s)).iterator();
      }, false).collect());
    } finally {
      spark.sparkContext().setJobDescription(null);
    }
    counted.sort(Comparator.comparing(Counted::path).thenComparingLong(Counted::start));
    return counted;
  }

  /**
   * The splits' summaries added up: each split's first line in its file and first record in the input
   * ({@link #key}), the columns named, the records and readable ones, the first problem met.
   */
  private record Numbering(List<Counted> splits, FileLabels labels, Map<String, long[]> firstLineAndRecord,
      TreeSet<String> columns, long records, long readable, String firstProblem) {

    static Numbering of(List<Counted> splits, FileLabels labels) {
      Map<String, long[]> firsts = new HashMap<>();
      TreeSet<String> columns = new TreeSet<>();
      long records = 0;
      long readable = 0;
      String firstProblem = null;
      String previousPath = null;
      long line = 1;
      for (Counted c : splits) {
        if (!c.path().equals(previousPath)) {
          line = 1;
          previousPath = c.path();
        }
        SplitSummary s = c.summary();
        if (s.columns() != null) {
          columns.addAll(s.columns());
        }
        if (s.problem() != null && firstProblem == null) {
          firstProblem = "line " + (line + s.problemLine() - 1) + " of " + labels.label(c.path()) + ": " + s.problem();
        }
        firsts.put(key(c.path(), c.start()), new long[] {line, records});
        line += s.lines();
        records += s.records();
        readable += s.readable();
      }
      return new Numbering(splits, labels, firsts, columns, records, readable, firstProblem);
    }

    /**
     * Checks that the input holds readable rows and the prompt column (in every file, when files name their
     * columns); returns whether it has the id column.
     */
    boolean check(String input, Format format, String idColumn, String promptColumn) {
      if (format.columnsPerFile()) {
        checkEachFile(input, idColumn, promptColumn);
      }
      if (records == 0) {
        throw new IllegalArgumentException("--input " + input + " holds no rows"
            + (firstProblem != null ? " (" + firstProblem + ")" : ""));
      }
      if (readable == 0) {
        throw new IllegalArgumentException("--input " + input + ": none of its " + records + " rows can be read as "
            + format.label() + " (" + firstProblem + "); is it " + format.label() + "? (--input-format)");
      }
      if (!columns.contains(promptColumn)) {
        throw new IllegalArgumentException("--input " + input + " has no column '" + promptColumn + "' (columns: "
            + String.join(", ", columns) + "); name the prompt column with --prompt-column");
      }
      return columns.contains(idColumn);
    }

    /** Every file's header can be read and names the prompt column, and the id column if any file does. */
    private void checkEachFile(String input, String idColumn, String promptColumn) {
      for (Counted c : splits) {
        SplitSummary s = c.summary();
        String file = labels.label(c.path());
        if (s.columns() == null && s.problem() != null) {
          throw new IllegalArgumentException("--input " + input + ": line " + s.problemLine() + " of " + file + ": "
              + s.problem());
        }
        if (s.columns() == null) {
          continue; // no header: an empty file
        }
        for (String column : columns.contains(idColumn) ? List.of(promptColumn, idColumn) : List.of(promptColumn)) {
          if (!s.columns().contains(column)) {
            throw new IllegalArgumentException("--input " + input + ": " + file + " has no column '" + column
                + "' (columns: " + String.join(", ", s.columns()) + ")" + (column.equals(promptColumn)
                ? "; name the prompt column with --prompt-column" : ", which other files have"));
          }
        }
      }
    }
  }

  @SuppressWarnings("unchecked")
  private static Class<TextInputFormat> wholeFiles() {
    return (Class<TextInputFormat>) (Class<?>) WholeFiles.class;
  }

  private static String key(String path, long start) {
    return start + "@" + path;
  }

  /** Hadoop's (offset, line) records as numbered, decoded lines. */
  private static final class Lines implements Iterator<Line> {
    private final Iterator<Tuple2<LongWritable, Text>> records;
    private final CharsetDecoder strict = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    private long number;

    Lines(Iterator<Tuple2<LongWritable, Text>> records, long firstNumber) {
      this.records = records;
      this.number = firstNumber;
    }

    @Override
    public boolean hasNext() {
      return records.hasNext();
    }

    @Override
    public Line next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      Text t = records.next()._2(); // Hadoop reuses the Text: decode it now
      long n = number++;
      try {
        return new Line(n, strict.decode(ByteBuffer.wrap(t.getBytes(), 0, t.getLength())).toString(), true);
      } catch (CharacterCodingException e) {
        return new Line(n, new String(t.getBytes(), 0, t.getLength(), StandardCharsets.UTF_8), false);
      }
    }
  }

  /** Files named as rows' positions name them: the path under --input when it is a directory, else the name. */
  private record FileLabels(String directory) implements Serializable {

    static FileLabels of(String input, Configuration conf) {
      Path path = new Path(input);
      try {
        FileSystem fs = path.getFileSystem(conf);
        Path qualified = fs.makeQualified(path);
        return new FileLabels(fs.isDirectory(qualified) ? qualified.toUri().getPath().replaceAll("/+$", "") + "/"
            : null);
      } catch (IOException e) {
        throw new IllegalArgumentException("--input " + input + ": cannot read it: " + e.getMessage(), e);
      }
    }

    String label(String path) {
      String p = new Path(path).toUri().getPath();
      return directory != null && p.startsWith(directory) ? p.substring(directory.length()) : new Path(path).getName();
    }
  }
}
