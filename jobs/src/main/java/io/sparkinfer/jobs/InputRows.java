package io.sparkinfer.jobs;

import io.sparkinfer.generate.ErrorCode;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * Rows of {@link Tables#INPUT}: an input row's id and prompt, or the error that row is when the input cannot
 * give it, and where it is. A row that has no readable id of its own takes one made of where it is:
 * {@code _line:<file>:<line>} in JSONL and CSV files, {@code _row:<file>:<row>} in Parquet files (1-based), so
 * the same bad row keeps the same id in every run, and {@code --resume} does not answer it twice.
 */
final class InputRows {

  /** The error codes of rows the input could not give (planning's are empty_prompt and prompt_too_long). */
  static final List<String> ERROR_CODES = List.of(ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_ENCODING);

  /** Prefix of the ids of text rows without a readable id. */
  static final String LINE_ID = "_line:";
  /** Prefix of the ids of Parquet rows without an id. */
  static final String ROW_ID = "_row:";
  /** Prefix of the ids of every row of an input without an id column. */
  static final String POSITION_ID = "row-";

  /** The longest excerpt of a bad value an error message quotes. */
  static final int EXCERPT = 80;

  private InputRows() {}

  /** A row that can be planned. */
  static Row ok(String id, String prompt, String source) {
    return RowFactory.create(id, prompt, null, null, source);
  }

  /** A row that is an error already. */
  static Row error(String id, String prompt, String errorCode, String message, String source) {
    return RowFactory.create(id, prompt, errorCode, message, source);
  }

  /** The id of line {@code line} of {@code file} when it has no readable id of its own. */
  static String lineId(String file, long line) {
    return LINE_ID + file + ":" + line;
  }

  /** Whether a decoded id kept bytes that were not UTF-8 (read as U+FFFD): then it is no stable id. */
  static boolean hasReplacement(String id) {
    return id.indexOf('\uFFFD') >= 0;
  }

  /** {@code text} cut to {@link #EXCERPT} characters for an error message. */
  static String excerpt(String text) {
    return text.length() <= EXCERPT ? text : text.substring(0, EXCERPT) + "...";
  }
}
