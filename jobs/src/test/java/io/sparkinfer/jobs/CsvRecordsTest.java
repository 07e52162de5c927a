package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** CSV records from numbered lines: RFC 4180 quoting, and a bad quote costing one record, not the file. */
class CsvRecordsTest {

  /** The records of {@code lines} (numbered from 1), as "line: fields" or "line! problem". */
  static List<String> records(String... lines) {
    List<TextInput.Line> numbered = new ArrayList<>();
    for (int i = 0; i < lines.length; i++) {
      numbered.add(new TextInput.Line(i + 1, lines[i], !lines[i].contains("\uFFFD")));
    }
    List<String> out = new ArrayList<>();
    new CsvRecords(numbered.iterator()).forEachRemaining(r -> out.add(r.readable()
        ? r.line() + ": " + r.fields() + (r.validUtf8() ? "" : " (not UTF-8)")
        : r.line() + "! " + r.problem()));
    return out;
  }

  @Test
  void quotedFieldsHoldCommasLineBreaksAndDoubledQuotes() {
    assertThat(records("id,prompt", "a,\"x, y\"", "b,\"class A:", "    pass\"", "", "c,\"say \"\"hi\"\"\"", "d,bare\"quote"))
        .containsExactly(
            "1: [id, prompt]",
            "2: [a, x, y]",
            "3: [b, class A:\n    pass]",
            "6: [c, say \"hi\"]",
            "7: [d, bare\"quote]");
  }

  @Test
  void emptyFieldsAreNullUnlessQuoted() {
    assertThat(records("a,,\"\",")).containsExactly("1: [a, null, , null]");
  }

  @Test
  void textAfterAClosingQuoteCostsOnlyThatRecord() {
    assertThat(records("id,prompt", "a,\"closed\" trailing", "b,fine")).containsExactly(
        "1: [id, prompt]",
        "2! text after the closing quote of field 2: ' trailing'",
        "3: [b, fine]");
  }

  @Test
  void aQuoteClosedOnALaterRecordsLineCostsOnlyTheRecordItOpened() {
    // b's quote runs into c's and d's lines and closes at d's opening quote: b is unreadable, c and d are read.
    assertThat(records("id,prompt", "b,\"unterminated", "c,fine", "d,\"ok \"\"quoted\"\"\"")).containsExactly(
        "1: [id, prompt]",
        "2! text after the closing quote of field 2 (on line 4): 'ok \"\"quoted\"\"\"'",
        "3: [c, fine]",
        "4: [d, ok \"quoted\"]");
  }

  @Test
  void aQuoteThatNeverClosesCostsOnlyItsLine() {
    assertThat(records("id,prompt", "a,one", "b,\"never closed", "c,two", "d,three")).containsExactly(
        "1: [id, prompt]",
        "2: [a, one]",
        "3! the quote that opens field 2 never closes",
        "4: [c, two]",
        "5: [d, three]");
  }

  @Test
  void aRecordLongerThanTheLimitIsUnreadableAndTheLinesAfterItAreRead() {
    char[] big = new char[CsvRecords.MAX_RECORD_CHARS / 2];
    Arrays.fill(big, 'x');
    String half = new String(big);
    assertThat(records("a,\"" + half, half, "b,c")).containsExactly(
        "1! the record runs over " + CsvRecords.MAX_RECORD_CHARS + " characters (a quote that does not close?)",
        "2: [" + half + "]",
        "3: [b, c]");
  }

  @Test
  void aRecordWithALineThatIsNotUtf8IsMarked() {
    assertThat(records("a,\"caf\uFFFD", "ok\"")).containsExactly("1: [a, caf\uFFFD\nok] (not UTF-8)");
  }
}
