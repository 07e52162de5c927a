package io.sparkinfer.jobs;

import io.sparkinfer.generate.ErrorCode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.sql.Row;

/**
 * CSV input ({@link TextInput}): each file's first record is its header, which names its columns; every later
 * record is one row ({@link CsvRecords}: RFC 4180 quoting, fields over several lines). A record that breaks the
 * quoting rules, one with another number of fields than the header, an empty id, or bytes that are not UTF-8 make
 * the record an error row; an empty prompt field reads as null (planning makes it an empty_prompt row).
 */
final class CsvInput implements TextInput.Format {

  private final String idColumn;
  private final String promptColumn;

  CsvInput(String idColumn, String promptColumn) {
    this.idColumn = idColumn;
    this.promptColumn = promptColumn;
  }

  @Override
  public String label() {
    return "CSV";
  }

  @Override
  public boolean splittable() {
    return false;
  }

  @Override
  public boolean columnsPerFile() {
    return true;
  }

  @Override
  public TextInput.SplitSummary summarize(Iterator<TextInput.Line> lines) {
    CountingLines counted = new CountingLines(lines);
    CsvRecords records = new CsvRecords(counted);
    if (!records.hasNext()) {
      return new TextInput.SplitSummary(counted.count, 0, 0, null, null, 0);
    }
    CsvRecords.Record header = records.next();
    if (!header.readable()) {
      while (counted.hasNext()) {
        counted.next();
      }
      return new TextInput.SplitSummary(counted.count, 0, 0, null, "cannot read the header: " + header.problem(),
          header.line());
    }
    List<String> columns = columns(header);
    long count = 0;
    long readable = 0;
    String problem = null;
    long problemLine = 0;
    while (records.hasNext()) {
      CsvRecords.Record r = records.next();
      count++;
      String p = problem(r, columns);
      if (p == null) {
        readable++;
      } else if (problem == null) {
        problem = p;
        problemLine = r.line();
      }
    }
    return new TextInput.SplitSummary(counted.count, count, readable, columns, problem, problemLine);
  }

  @Override
  public Iterator<Row> rows(Iterator<TextInput.Line> lines, TextInput.SplitPlace place) {
    CsvRecords records = new CsvRecords(lines);
    if (!records.hasNext()) {
      return Collections.emptyIterator();
    }
    CsvRecords.Record header = records.next();
    if (!header.readable()) {
      throw new IllegalStateException("the CSV header of " + place.file() + " cannot be read: " + header.problem());
    }
    List<String> columns = columns(header);
    int idIndex = columns.indexOf(idColumn);
    int promptIndex = columns.indexOf(promptColumn);
    return new Iterator<>() {
      private long position = place.firstRecord();

      @Override
      public boolean hasNext() {
        return records.hasNext();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return row(records.next(), columns, idIndex, promptIndex, place, position++);
      }
    };
  }

  private static Row row(CsvRecords.Record r, List<String> columns, int idIndex, int promptIndex,
      TextInput.SplitPlace place, long position) {
    String source = place.file() + ":" + r.line();
    String lineId = InputRows.lineId(place.file(), r.line());
    String where = "line " + r.line() + " of " + place.file();
    String problem = problem(r, columns);
    if (problem != null) {
      return InputRows.error(lineId, null, ErrorCode.INVALID_REQUEST, where + ": " + problem, source);
    }
    String prompt = r.fields().get(promptIndex);
    String id;
    if (!place.hasIdColumn()) {
      id = InputRows.POSITION_ID + position;
    } else {
      id = r.fields().get(idIndex);
      if (id == null) {
        return InputRows.error(lineId, prompt, ErrorCode.INVALID_REQUEST, where + " has no id ('" + columns.get(idIndex)
            + "' is empty)", source);
      }
    }
    if (!r.validUtf8()) {
      return InputRows.error(InputRows.hasReplacement(id) ? lineId : id, prompt, ErrorCode.INVALID_ENCODING,
          where + " is not valid UTF-8 (the bad bytes read as U+FFFD)", source);
    }
    return InputRows.ok(id, prompt, source);
  }

  /** Why a record is no row of a file with these columns, or null. */
  private static String problem(CsvRecords.Record r, List<String> columns) {
    if (!r.readable()) {
      return "cannot read the record: " + r.problem();
    }
    if (r.fields().size() != columns.size()) {
      return r.fields().size() + " fields where the header has " + columns.size();
    }
    return null;
  }

  /** The header's column names; an empty name reads as _cN, as Spark names it. */
  private static List<String> columns(CsvRecords.Record header) {
    List<String> columns = new ArrayList<>();
    for (int i = 0; i < header.fields().size(); i++) {
      String name = header.fields().get(i);
      columns.add(name == null || name.isEmpty() ? "_c" + i : name);
    }
    return columns;
  }

  /** The lines, counted as they are read. */
  private static final class CountingLines implements Iterator<TextInput.Line> {
    private final Iterator<TextInput.Line> lines;
    long count;

    CountingLines(Iterator<TextInput.Line> lines) {
      this.lines = lines;
    }

    @Override
    public boolean hasNext() {
      return lines.hasNext();
    }

    @Override
    public TextInput.Line next() {
      TextInput.Line l = lines.next();
      count++;
      return l;
    }
  }
}
