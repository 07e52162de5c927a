package io.sparkinfer.jobs;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.List;

/**
 * The SQL cells of a Jupyter notebook ({@code notebooks/*.ipynb}): code cells whose first line is the
 * {@code %%sql} magic, as sparkmagic, jupysql and Databricks run them. {@code submit/sql.sh --file} runs them
 * without Jupyter, and the notebook test runs every one against real tables and checks the columns each cell
 * declares in its metadata ({@code "sparkinfer": {"columns": [...]}}).
 */
public final class Notebook {

  /** One {@code %%sql} cell: the statement without the magic line, and the columns it declares (maybe none). */
  public record SqlCell(String sql, List<String> columns) {}

  private Notebook() {}

  /**
   * The {@code %%sql} cells of notebook JSON, in order.
   *
   * @throws IllegalArgumentException when the text is not a notebook
   */
  public static List<SqlCell> sqlCells(String json) {
    JsonObject nb;
    try {
      nb = JsonParser.parseString(json).getAsJsonObject();
    } catch (JsonParseException | IllegalStateException e) {
      throw new IllegalArgumentException("not a Jupyter notebook (JSON with a cells list): " + e.getMessage(), e);
    }
    if (!nb.has("cells") || !nb.get("cells").isJsonArray()) {
      throw new IllegalArgumentException("not a Jupyter notebook: it has no cells list");
    }
    List<SqlCell> out = new ArrayList<>();
    for (JsonElement e : nb.getAsJsonArray("cells")) {
      JsonObject cell = e.getAsJsonObject();
      if (!"code".equals(cell.get("cell_type").getAsString())) {
        continue;
      }
      String source = source(cell.get("source"));
      if (!source.startsWith("%%sql")) {
        continue;
      }
      String sql = source.substring(source.indexOf('\n') + 1).strip();
      if (sql.endsWith(";")) {
        sql = sql.substring(0, sql.length() - 1);
      }
      List<String> columns = new ArrayList<>();
      JsonObject meta = cell.has("metadata") ? cell.getAsJsonObject("metadata") : new JsonObject();
      if (meta.has("sparkinfer") && meta.getAsJsonObject("sparkinfer").has("columns")) {
        meta.getAsJsonObject("sparkinfer").getAsJsonArray("columns").forEach(c -> columns.add(c.getAsString()));
      }
      out.add(new SqlCell(sql, List.copyOf(columns)));
    }
    return out;
  }

  /** A cell's source: a string, or a list of lines. */
  private static String source(JsonElement source) {
    if (source.isJsonArray()) {
      StringBuilder sb = new StringBuilder();
      for (JsonElement line : (JsonArray) source) {
        sb.append(line.getAsString());
      }
      return sb.toString();
    }
    return source.getAsString();
  }
}
