package io.sparkinfer.jobs;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import io.sparkinfer.generate.ErrorCode;
import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.TreeSet;
import org.apache.spark.sql.Row;

/**
 * JSON Lines input ({@link TextInput}): each line that is not blank is one row, a JSON object (RFC 8259, strict)
 * with the id and the prompt. A line that is not a JSON object, an id that is missing, null, an object or an array,
 * a prompt that is not a string or null, or bytes that are not UTF-8 make the line an error row; a number or a
 * boolean id reads as its text. A missing or null prompt reads as null (planning makes it an empty_prompt row).
 */
final class JsonlInput implements TextInput.Format {

  private final String idColumn;
  private final String promptColumn;

  JsonlInput(String idColumn, String promptColumn) {
    this.idColumn = idColumn;
    this.promptColumn = promptColumn;
  }

  @Override
  public String label() {
    return "JSONL";
  }

  @Override
  public boolean splittable() {
    return true;
  }

  @Override
  public boolean columnsPerFile() {
    return false;
  }

  @Override
  public TextInput.SplitSummary summarize(Iterator<TextInput.Line> lines) {
    long count = 0;
    long records = 0;
    long readable = 0;
    TreeSet<String> keys = new TreeSet<>();
    String problem = null;
    long problemLine = 0;
    while (lines.hasNext()) {
      TextInput.Line line = lines.next();
      count++;
      if (line.text().isBlank()) {
        continue;
      }
      records++;
      try {
        JsonObject o = parseObject(line.text());
        readable++;
        for (String k : o.keySet()) {
          if (keys.size() < TextInput.SplitSummary.MAX_COLUMNS) {
            keys.add(k);
          }
        }
      } catch (JsonParseException e) {
        if (problem == null) {
          problem = "not a JSON object: " + e.getMessage();
          problemLine = line.number();
        }
      }
    }
    return new TextInput.SplitSummary(count, records, readable, readable == 0 ? null : new ArrayList<>(keys),
        problem, problemLine);
  }

  @Override
  public Iterator<Row> rows(Iterator<TextInput.Line> lines, TextInput.SplitPlace place) {
    return new Iterator<>() {
      private long position = place.firstRecord();
      private TextInput.Line next;

      @Override
      public boolean hasNext() {
        while (next == null && lines.hasNext()) {
          TextInput.Line line = lines.next();
          if (!line.text().isBlank()) {
            next = line;
          }
        }
        return next != null;
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        TextInput.Line line = next;
        next = null;
        return row(line, place, position++);
      }
    };
  }

  /** The row of a line that is not blank, the {@code position}-th row of the input. */
  Row row(TextInput.Line line, TextInput.SplitPlace place, long position) {
    String source = place.file() + ":" + line.number();
    String lineId = InputRows.lineId(place.file(), line.number());
    String where = "line " + line.number() + " of " + place.file();
    JsonObject o;
    try {
      o = parseObject(line.text());
    } catch (JsonParseException e) {
      return InputRows.error(lineId, null, ErrorCode.INVALID_REQUEST, where + " is not a JSON object: "
          + e.getMessage(), source);
    }
    JsonElement idValue = o.get(idColumn);
    JsonElement promptValue = o.get(promptColumn);
    boolean promptIsText = promptValue != null && promptValue.isJsonPrimitive()
        && promptValue.getAsJsonPrimitive().isString();
    String prompt = promptIsText ? promptValue.getAsString() : null;
    String id;
    if (!place.hasIdColumn()) {
      id = InputRows.POSITION_ID + position;
    } else if (idValue == null || idValue.isJsonNull()) {
      return InputRows.error(lineId, prompt, ErrorCode.INVALID_REQUEST, where + " has no id ('" + idColumn + "')",
          source);
    } else if (!idValue.isJsonPrimitive()) {
      return InputRows.error(lineId, prompt, ErrorCode.INVALID_REQUEST, where + ": the id ('" + idColumn
          + "') must be a string or a number, not " + kind(idValue) + ": " + InputRows.excerpt(idValue.toString()),
          source);
    } else {
      id = idValue.getAsString();
    }
    if (!line.validUtf8()) {
      return InputRows.error(InputRows.hasReplacement(id) ? lineId : id, prompt, ErrorCode.INVALID_ENCODING,
          where + " is not valid UTF-8 (the bad bytes read as U+FFFD)", source);
    }
    if (promptValue != null && !promptValue.isJsonNull() && !promptIsText) {
      return InputRows.error(id, null, ErrorCode.INVALID_REQUEST, where + ": the prompt ('" + promptColumn
          + "') must be a string, not " + kind(promptValue) + ": " + InputRows.excerpt(promptValue.toString()),
          source);
    }
    return InputRows.ok(id, prompt, source);
  }

  /**
   * The line as a JSON object, strictly (no comments, single quotes or unquoted names; nothing after it).
   *
   * @throws JsonParseException with what is wrong
   */
  static JsonObject parseObject(String text) {
    JsonReader reader = new JsonReader(new StringReader(text));
    reader.setStrictness(Strictness.STRICT);
    JsonElement e;
    try {
      e = JsonParser.parseReader(reader);
    } catch (JsonParseException ex) {
      throw new JsonParseException(message(ex), ex);
    }
    if (!e.isJsonObject()) {
      throw new JsonParseException("it is " + kind(e));
    }
    try {
      if (reader.peek() != JsonToken.END_DOCUMENT) {
        throw new JsonParseException("text after the object");
      }
    } catch (IOException ex) {
      throw new JsonParseException("text after the object", ex);
    }
    return e.getAsJsonObject();
  }

  /** A parser's message, first line only, without Gson's troubleshooting link. */
  private static String message(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    return InputTable.firstLine(m).replaceAll("\\s*See https?://\\S+$", "");
  }

  /** What a JSON value is, for messages: a number, a string, an object... */
  static String kind(JsonElement e) {
    if (e.isJsonObject()) {
      return "an object";
    }
    if (e.isJsonArray()) {
      return "an array";
    }
    if (e.isJsonNull()) {
      return "null";
    }
    if (e.getAsJsonPrimitive().isNumber()) {
      return "a number";
    }
    return e.getAsJsonPrimitive().isBoolean() ? "a boolean" : "a string";
  }
}
