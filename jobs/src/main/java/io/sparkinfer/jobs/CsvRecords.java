package io.sparkinfer.jobs;

import io.sparkinfer.jobs.TextInput.Line;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * The records of one CSV file, assembled from its numbered lines (RFC 4180: fields separated by commas; a field
 * in double quotes may hold commas, line breaks and doubled quotes; a quote inside an unquoted field is kept as
 * text). Blank lines between records are skipped. An unquoted empty field reads as null, a quoted one as "".
 *
 * <p>A record that breaks the quoting rules (text after a closing quote, a quote that never closes, a record
 * over {@link #MAX_RECORD_CHARS} characters) does not stop the file: it is returned with its problem, as a record
 * of its first line only, and reading goes on at the line after that one. So a stray quote costs one record, not
 * every record after it up to the next quote.
 */
final class CsvRecords implements Iterator<CsvRecords.Record> {

  /** Characters a record may hold; a longer one is taken for a quote that does not close. */
  static final int MAX_RECORD_CHARS = 16 << 20;

  /**
   * A record: the line it starts on, its fields (null when it cannot be read), why it cannot be read, and
   * whether every line of it was valid UTF-8.
   */
  record Record(long line, List<String> fields, String problem, boolean validUtf8) {
    boolean readable() {
      return problem == null;
    }
  }

  private enum State { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED }

  private final Iterator<Line> lines;
  /** Lines read and given back: the lines after the first of a record that could not be read. */
  private final Deque<Line> pending = new ArrayDeque<>();
  private Record next;

  CsvRecords(Iterator<Line> lines) {
    this.lines = lines;
  }

  @Override
  public boolean hasNext() {
    if (next == null) {
      next = read();
    }
    return next != null;
  }

  @Override
  public Record next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    Record r = next;
    next = null;
    return r;
  }

  private Line nextLine() {
    if (!pending.isEmpty()) {
      return pending.pollFirst();
    }
    return lines.hasNext() ? lines.next() : null;
  }

  /** The next record, or null at the end of the file. */
  private Record read() {
    Line first = nextLine();
    while (first != null && first.text().isBlank()) {
      first = nextLine();
    }
    if (first == null) {
      return null;
    }
    List<Line> used = new ArrayList<>();
    used.add(first);
    List<String> fields = new ArrayList<>();
    StringBuilder field = new StringBuilder();
    boolean validUtf8 = first.validUtf8();
    State state = State.FIELD_START;
    long chars = 0;
    Line line = first;
    while (true) {
      String text = line.text();
      chars += text.length() + 1;
      if (chars > MAX_RECORD_CHARS) {
        return unreadable(used, "the record runs over " + MAX_RECORD_CHARS + " characters (a quote that does not "
            + "close?)");
      }
      for (int i = 0; i < text.length(); i++) {
        char c = text.charAt(i);
        switch (state) {
          case FIELD_START -> {
            if (c == '"') {
              state = State.QUOTED;
            } else if (c == ',') {
              fields.add(null);
            } else {
              field.append(c);
              state = State.UNQUOTED;
            }
          }
          case UNQUOTED -> {
            if (c == ',') {
              fields.add(field.toString());
              field.setLength(0);
              state = State.FIELD_START;
            } else {
              field.append(c);
            }
          }
          case QUOTED -> {
            if (c == '"') {
              state = State.QUOTE_IN_QUOTED;
            } else {
              field.append(c);
            }
          }
          case QUOTE_IN_QUOTED -> {
            if (c == '"') {
              field.append('"');
              state = State.QUOTED;
            } else if (c == ',') {
              fields.add(field.toString());
              field.setLength(0);
              state = State.FIELD_START;
            } else {
              return unreadable(used, "text after the closing quote of field " + (fields.size() + 1)
                  + (line == first ? "" : " (on line " + line.number() + ")") + ": '"
                  + InputRows.excerpt(text.substring(i)) + "'");
            }
          }
        }
      }
      if (state != State.QUOTED) {
        break;
      }
      // a line break inside quotes belongs to the field
      field.append('\n');
      line = nextLine();
      if (line == null) {
        return unreadable(used, "the quote that opens field " + (fields.size() + 1) + " never closes");
      }
      used.add(line);
      validUtf8 &= line.validUtf8();
    }
    fields.add(state == State.FIELD_START ? null : field.toString());
    return new Record(first.number(), fields, null, validUtf8);
  }

  /** The record of {@code used}'s first line, unreadable; the lines after it are read again. */
  private Record unreadable(List<Line> used, String problem) {
    for (int i = used.size() - 1; i >= 1; i--) {
      pending.addFirst(used.get(i));
    }
    Line first = used.get(0);
    return new Record(first.number(), null, problem, first.validUtf8());
  }
}
